"""Every submodule's inputs and outputs in one run, and where two runs part ways.

`LayerRecorder` hooks every submodule: a forward pre-hook clones its floating-point inputs
(before an in-place op such as `ReLU(inplace=True)` overwrites them), a forward hook clones its
outputs. Calls are kept in the order they *finish*, so a module comes after the modules it
calls: walking that order, the first module whose output diverges is the innermost one that
adds the error, not the parent that carries it.

On a compiled copy the hooks must be registered before its first call: dynamo traces them into
the graph, which then returns every intermediate output. That graph is a slightly different
program from the one users run (other fusions, more kernels); hooks registered after compiling
would never run. Never time a recorded copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from probes.divergence.fp64_criterion import compare
from probes.divergence.runs import parameter_name
from probes.records.divergence import (
    GROWTH_ADDS_ERROR,
    Fp64Criterion,
    ModuleDivergence,
    OutputComparison,
)


def _float_clones(value: Any) -> list[torch.Tensor]:
    return [
        leaf.detach().clone()
        for leaf in tree_leaves(value)
        if isinstance(leaf, torch.Tensor) and leaf.is_floating_point()
    ]


@dataclass
class LayerCall:
    path: str
    module_class: str
    call_index: int  # 0 for the first call of this module in the run, 1 for the second, ...
    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]

    @property
    def key(self) -> tuple[str, int]:
        return self.path, self.call_index


class LayerRecorder:
    """Records inputs and outputs of every submodule call of one copy, in finishing order."""

    def __init__(self) -> None:
        self.finished: list[tuple[str, str, list[torch.Tensor], list[torch.Tensor]]] = []
        self._open_inputs: list[list[torch.Tensor]] = []
        self._handles: list[Any] = []

    def attach(self, module: nn.Module) -> LayerRecorder:
        for path, sub in module.named_modules():
            self._attach_one(parameter_name(path), type(sub).__name__, sub)
        return self

    def _attach_one(self, path: str, module_class: str, sub: nn.Module) -> None:
        open_inputs, finished = self._open_inputs, self.finished

        def before(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            open_inputs.append(_float_clones((args, kwargs)))

        def after(
            module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
        ) -> None:
            finished.append((path, module_class, open_inputs.pop(), _float_clones(output)))

        self._handles.append(sub.register_forward_pre_hook(before, with_kwargs=True))
        self._handles.append(sub.register_forward_hook(after, with_kwargs=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def clear(self) -> None:
        self.finished.clear()
        self._open_inputs.clear()

    def calls(self) -> list[LayerCall]:
        counts: dict[str, int] = {}
        calls = []
        for path, module_class, inputs, outputs in self.finished:
            index = counts.get(path, 0)
            counts[path] = index + 1
            calls.append(LayerCall(path, module_class, index, inputs, outputs))
        return calls


def _relative_rmse(compiled: torch.Tensor, eager: torch.Tensor) -> float:
    diff = compiled.detach().to(torch.float64) - eager.detach().to(torch.float64)
    scale = float(eager.detach().to(torch.float64).square().mean().sqrt()) if eager.numel() else 0
    error = float(diff.square().mean().sqrt()) if diff.numel() else 0.0
    if scale == 0.0:
        return 0.0 if error == 0.0 else math.inf
    return error / scale


def _leaves_match(*groups: list[torch.Tensor]) -> bool:
    first = groups[0]
    return all(
        len(g) == len(first) and all(a.shape == b.shape for a, b in zip(g, first, strict=True))
        for g in groups
    )


def _growth(output_rel: float, input_rel: float | None) -> float | None:
    if input_rel is None:
        return None
    if input_rel == 0.0:
        return 1.0 if output_rel == 0.0 else math.inf
    return output_rel / input_rel


def _compare_leaves(
    eager: list[torch.Tensor],
    compiled: list[torch.Tensor],
    fp64: list[torch.Tensor] | None,
    criterion: Fp64Criterion,
) -> list[OutputComparison]:
    references = fp64 if fp64 is not None and _leaves_match(eager, fp64) else [None] * len(eager)
    return [
        compare("leaf", e, c, f, criterion)
        for e, c, f in zip(eager, compiled, references, strict=True)
    ]


def compare_call(
    order: int,
    eager: LayerCall,
    compiled: LayerCall,
    fp64: LayerCall | None,
    criterion: Fp64Criterion,
) -> ModuleDivergence | None:
    """None when the call has no floating-point output, or the runs disagree on its shapes."""
    if not eager.outputs or not _leaves_match(eager.outputs, compiled.outputs):
        return None
    out = _compare_leaves(eager.outputs, compiled.outputs, fp64 and fp64.outputs, criterion)
    # the leaf shown: a failing one first, then the one that differs most
    worst = max(range(len(out)), key=lambda i: (not out[i].passes, out[i].rmse_diff))
    inputs_pass, input_rmse, input_rel = True, None, None
    if eager.inputs and _leaves_match(eager.inputs, compiled.inputs):
        ins = _compare_leaves(eager.inputs, compiled.inputs, fp64 and fp64.inputs, criterion)
        inputs_pass = all(c.passes for c in ins)
        input_rmse = max(c.rmse_diff for c in ins)
        input_rel = max(
            _relative_rmse(c, e) for e, c in zip(eager.inputs, compiled.inputs, strict=True)
        )
    growth = _growth(_relative_rmse(compiled.outputs[worst], eager.outputs[worst]), input_rel)
    passes = all(o.passes for o in out)
    grows = growth is not None and growth >= GROWTH_ADDS_ERROR
    return ModuleDivergence(
        order=order,
        path=eager.path,
        module_class=eager.module_class,
        call_index=eager.call_index,
        shape=out[worst].shape,
        max_abs_error=out[worst].max_abs_diff,
        max_rel_error=out[worst].max_rel_diff,
        rmse=out[worst].rmse_diff,
        input_rmse=input_rmse,
        error_growth=growth,
        eager_rmse_vs_fp64=out[worst].eager_rmse_vs_fp64,
        compiled_rmse_vs_fp64=out[worst].compiled_rmse_vs_fp64,
        error_ratio=out[worst].error_ratio,
        passes=passes,
        inputs_pass=inputs_pass,
        adds_error=not passes and (inputs_pass or grows),
    )


def walk_modules(
    eager: list[LayerCall],
    compiled: list[LayerCall],
    fp64: list[LayerCall] | None,
    criterion: Fp64Criterion,
) -> list[ModuleDivergence]:
    """Every call recorded on both sides, in eager's finishing order."""
    compiled_by_key = {call.key: call for call in compiled}
    fp64_by_key = {call.key: call for call in fp64 or []}
    walked = []
    for call in eager:
        other = compiled_by_key.get(call.key)
        if other is None:
            continue
        found = compare_call(len(walked), call, other, fp64_by_key.get(call.key), criterion)
        if found is not None:
            walked.append(found)
    clear_carriers(walked)
    return walked


def _contains(ancestor: str, path: str) -> bool:
    return ancestor == "" or path.startswith(ancestor + ".")


def clear_carriers(walk: list[ModuleDivergence]) -> None:
    """A module that contains an earlier module adding error only carries it: unflag it."""
    adders: list[str] = []
    for module in walk:
        if not module.adds_error:
            continue
        if any(_contains(module.path, inner) for inner in adders):
            module.adds_error = False
        else:
            adders.append(module.path)


def first_adding_error(walk: list[ModuleDivergence]) -> ModuleDivergence | None:
    return next((m for m in walk if m.adds_error), None)
