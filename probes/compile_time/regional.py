"""Regional compilation: compile each repeated block of a model, not the whole model, and measure.

A transformer holds N layers of one structure. Compiled whole, dynamo traces and Inductor
compiles all N inlined into one graph; compiled block by block (`layer.compile()` on each
instance, PyTorch's recipe "Reducing torch.compile cold start compilation time with regional
compilation"), the first instance's call compiles the block once and every other instance runs
the same code: with `inline_inbuilt_nn_modules` (on in torch 2.11) a block's parameters are
inputs of its graph, so instances of one structure share one compile. The rest of the model runs
eager, and each block's call crosses back to Python: the compile is shorter, a call may be
slower. Both are measured here, against the default compile of the whole model.

`find_repeated_blocks` finds the blocks from the module tree alone (no compile);
`regional_copy` compiles them on a fresh copy; `measure_regional` times that copy's first call
(the compile, by stage) and its warm calls beside eager's and the default compile's.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from probes.compile_time.first_call import record_twin_timing, watched_first_call
from probes.errors import error_line
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import (
    FORWARD,
    LEVER_FAILED,
    MIN_REPEATS,
    REGIONAL,
    CompileLever,
    EntryCompileTime,
    RepeatedBlock,
)
from probes.speed.backends import FreshBackend, mode_config
from probes.targets.target import CompileSettings, Target

Call = Callable[[], Any]
# The name a user's code gives the model in a pasted line, by target kind.
_ROOT_NAME = {"lerobot-policy": "policy"}
_DEFAULT_ROOT_NAME = "model"
# A module's structure: class, own tensors, children's structures (`_signatures`).
Signature = tuple[Any, ...]


# --- finding the repeated blocks -------------------------------------------------------------


def _class_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _signatures(root: nn.Module) -> dict[int, Signature]:
    """Each module's structural signature, by id: its class, its own parameters and buffers
    (name, shape, dtype) and its children's signatures under their names, recursively.

    Two modules with one signature trace to the same graph with their tensors as its inputs.
    """
    signatures: dict[int, Signature] = {}

    def signature(module: nn.Module) -> Signature:
        known = signatures.get(id(module))
        if known is not None:
            return known
        tensors = [
            (kind, name, tuple(tensor.shape), str(tensor.dtype))
            for kind, named in (
                ("parameter", module.named_parameters(recurse=False)),
                ("buffer", module.named_buffers(recurse=False)),
            )
            for name, tensor in named
            if tensor is not None
        ]
        children = tuple((name, signature(child)) for name, child in module.named_children())
        signatures[id(module)] = (_class_name(module), tuple(tensors), children)
        return signatures[id(module)]

    signature(root)
    return signatures


def _inside(path: str, outer: str) -> bool:
    """Whether submodule `path` lies inside (or is) submodule `outer`."""
    return path == outer or path.startswith(outer + ".")


def _count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def find_repeated_blocks(module: nn.Module, min_repeats: int = MIN_REPEATS) -> list[RepeatedBlock]:
    """The outermost blocks `module` holds `min_repeats` or more instances of, largest first.

    Submodules are grouped by structural signature; a group is a block when it has at least one
    child module and one parameter (a repeated lone Linear or LayerNorm is not a block to
    compile on its own). Walking the tree from the top, an instance of a block claims its
    subtree: an instance inside one claimed already is compiled with it and left out (a layer's
    sub-blocks), and a block left with fewer than `min_repeats` instances outside the others is
    dropped. Sorted by the parameters of all instances, then by first path: the same model gives
    the same list.
    """
    signatures = _signatures(module)
    named = [(path, sub) for path, sub in module.named_modules() if path]
    counts = Counter(signatures[id(sub)] for _, sub in named)
    candidates = {
        signatures[id(sub)]
        for _, sub in named
        if counts[signatures[id(sub)]] >= min_repeats and _can_be_block(sub)
    }
    while True:
        groups = _claim(named, signatures, candidates)
        too_few = {sig for sig, instances in groups.items() if len(instances) < min_repeats}
        if not too_few:
            break
        candidates -= too_few  # their subtrees are free to claim again
    total = _count_parameters(module)
    blocks = [_block(instances, total) for instances in groups.values()]
    blocks.sort(key=lambda block: (-block.total_parameters, block.paths[0]))
    return blocks


def _claim(
    named: Sequence[tuple[str, nn.Module]],
    signatures: dict[int, Signature],
    candidates: set[Signature],
) -> dict[Signature, list[tuple[str, nn.Module]]]:
    """Top-down, each candidate instance not inside one claimed already, by signature."""
    groups: dict[Signature, list[tuple[str, nn.Module]]] = defaultdict(list)
    claimed: list[str] = []
    for path, submodule in named:  # parents before their children
        signature = signatures[id(submodule)]
        if signature in candidates and not any(_inside(path, outer) for outer in claimed):
            groups[signature].append((path, submodule))
            claimed.append(path)
    return groups


def _can_be_block(module: nn.Module) -> bool:
    """A module with children and parameters: worth a compile of its own."""
    return next(module.children(), None) is not None and _count_parameters(module) > 0


def _block(instances: Sequence[tuple[str, nn.Module]], model_parameters: int) -> RepeatedBlock:
    first = instances[0][1]
    parameters = _count_parameters(first)
    share = parameters * len(instances) / model_parameters if model_parameters else 0.0
    return RepeatedBlock(
        class_name=_class_name(first),
        paths=[path for path, _ in instances],
        parameters=parameters,
        share_of_parameters=share,
    )


# --- compiling them --------------------------------------------------------------------------


def regional_settings(settings: CompileSettings) -> CompileSettings:
    """`settings` with a `FreshBackend` of the same backend, the mode's config carried in it.

    One backend object for every instance: dynamo reuses a compile only for the backend object
    it was made with, and a fresh one keeps this compile apart from the benchmark's.
    """
    backend = settings.backend_name
    patches: dict[str, Any] = {}
    if backend == "inductor":
        patches = mode_config(settings.mode)
    if isinstance(settings.backend, FreshBackend):
        patches = {**settings.backend.config_patches, **patches}
    return dataclasses.replace(settings, mode=None, backend=FreshBackend(backend, patches))


def regional_copy(
    target: Target, blocks: Sequence[RepeatedBlock], settings: CompileSettings
) -> nn.Module:
    """A fresh eager copy of the target's module with every instance of `blocks` compiled in
    place (`block.compile(...)`), with `settings`' arguments and a backend of its own."""
    copy = target.fresh_copy()
    kwargs = regional_settings(settings).compile_kwargs()
    for block in blocks:
        for path in block.paths:
            copy.get_submodule(path).compile(**kwargs)
    return copy


# --- measuring -------------------------------------------------------------------------------


def measure_regional(
    target: Target,
    settings: CompileSettings,
    blocks: Sequence[RepeatedBlock],
    entry_point: str,
    call_of: Callable[[nn.Module], Call],
    eager_call: Call,
    default_call: Call,
    baseline: EntryCompileTime,
    bench: BenchmarkSettings,
    copy: nn.Module | None = None,
) -> CompileLever:
    """Regional compilation of `blocks` tried on `entry_point` and measured against the default.

    - `settings`: the default compile's (mode, backend, fullgraph, dynamic), applied per block;
    - `call_of(copy)`: the entry point's call on a copy, as the benchmark makes it for its own
      copies (`target.infer` under no_grad; a `TrainingLoop(copy, ...).step` for training);
    - `eager_call`, `default_call`: the benchmark's warm eager and default-compiled calls, timed
      round-robin with the regional copy's;
    - `baseline`: what the default compile of the entry point cost (its first call, watched);
    - `bench`: the benchmark's iterations and warm-up;
    - `copy`: the regional copy to measure, not called yet (`regional_copy(target, blocks,
      settings)`, built here when None): a caller that reads its outputs afterwards passes it.

    The regional copy's first call is watched as the baseline's was, by frame and stage. When
    the baseline found nothing in the caches (it compiled cold) this compile runs cold too, with
    the caches off (`detail["cold"]`); otherwise with the caches as they are. Both compile
    figures leave out Inductor's once-per-process check of the CPU, which the baseline paid and
    a fresh process would pay with either. A compile or call that raises is recorded as a
    failed lever, with the error in one line.
    """
    lever = CompileLever(
        name=REGIONAL,
        entry_point=entry_point,
        baseline_compile_s=baseline.compile_s - baseline.cpu_isa_check_s,
        paste=regional_paste(target, blocks, settings),
    )
    cold = baseline.cache.hits == 0
    lever.detail = {
        "blocks": [
            {"class_name": b.class_name, "instances": b.instances, "parameters": b.parameters}
            for b in blocks
        ],
        "instances": sum(b.instances for b in blocks),
        "cold": cold,
    }
    try:
        if copy is None:
            copy = regional_copy(target, blocks, settings)
        _measure(lever, target, settings, call_of(copy), eager_call, default_call, bench, cold)
    except Exception as error:  # a failed lever is a result, not the diagnosis's end
        lever.status = LEVER_FAILED
        lever.reason = error_line(error)
    return lever


def _measure(
    lever: CompileLever,
    target: Target,
    settings: CompileSettings,
    call: Call,
    eager_call: Call,
    default_call: Call,
    bench: BenchmarkSettings,
    cold: bool,
) -> None:
    """Time the regional copy's first `call` (its compile, watched) and its warm calls."""
    device = target.device
    compile_time = watched_first_call(lever.entry_point, call, settings, device, cold=cold)
    record_twin_timing(lever, compile_time, (eager_call, default_call, call), bench, device)
    lever.detail["frames_compiled"] = frames_compiled(compile_time)


def frames_compiled(compile_time: EntryCompileTime) -> int:
    """Frames dynamo compiled during the call (a frame's backward is part of the same frame)."""
    return len({f.compile_id for f in compile_time.frames if f.part == FORWARD})


# --- what a user writes ----------------------------------------------------------------------


def regional_paste(
    target: Target, blocks: Sequence[RepeatedBlock], settings: CompileSettings
) -> str:
    """The code that compiles the same blocks in a user's script, instead of the whole model."""
    root = _ROOT_NAME.get(target.kind, _DEFAULT_ROOT_NAME)
    arguments = _compile_arguments(settings)
    lines: list[str] = []
    for block in blocks:
        lines += _block_lines(target.module, root, block.paths, arguments)
    return "\n".join(lines)


def _compile_arguments(settings: CompileSettings) -> str:
    """The arguments of `.compile(...)` that differ from torch.compile's defaults."""
    parts = []
    if settings.mode not in (None, "default"):
        parts.append(f"mode={settings.mode!r}")
    if settings.backend_name != "inductor":
        parts.append(f"backend={settings.backend_name!r}")
    if settings.fullgraph:
        parts.append("fullgraph=True")
    if settings.dynamic is not None:
        parts.append(f"dynamic={settings.dynamic}")
    return ", ".join(parts).replace("'", '"')


def _block_lines(module: nn.Module, root: str, paths: Sequence[str], arguments: str) -> list[str]:
    """One loop over the container when the instances are its members, else a line each."""
    parents = {path.rpartition(".")[0] for path in paths}
    if len(parents) == 1 and len(paths) > 1:
        parent_path = parents.pop()
        container = module.get_submodule(parent_path) if parent_path else module
        names = [path.rpartition(".")[2] for path in paths]
        if [name for name, _ in container.named_children()] == names and isinstance(
            container, (nn.ModuleList, nn.Sequential, nn.ModuleDict)
        ):
            members = _expression(module, root, parent_path)
            if isinstance(container, nn.ModuleDict):
                members += ".values()"
            return [f"for block in {members}:", f"    block.compile({arguments})"]
    return [f"{_expression(module, root, path)}.compile({arguments})" for path in paths]


def _expression(module: nn.Module, root: str, path: str) -> str:
    """Python for submodule `path` of `module` (named `root`): attributes, and an index for a
    member of a ModuleList or Sequential; `get_submodule` for any other name."""
    text = root
    for part in path.split(".") if path else []:
        if part.isdigit() and isinstance(module, (nn.ModuleList, nn.Sequential)):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            return f'{root}.get_submodule("{path}")'
        module = module.get_submodule(part)
    return text
