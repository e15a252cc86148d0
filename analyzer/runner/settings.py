"""What a diagnosis is asked to do, checked once for the Python API and every command.

Each check ends in a `UsageError` with one line the user can act on: an unknown mode or backend,
a probe that does not exist, an output folder that cannot be written, and for the commands a
`--device` this machine lacks (the API hands its `device` to the module target, which checks it).
A check names what it read by `option`: the command's option (`--out X: cannot write there`) or
the API's argument (`out_dir X: ...`). The benchmark's settings are a preset's iteration counts
where none is asked for (`benchmark_settings`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from analyzer.errors import UsageError
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import LEVERS
from probes.records.names import BENCHMARK, DEFAULT_SEED, NEEDS_BENCHMARK, PROBES
from probes.records.speed import WHAT_IFS, requested_what_ifs

if TYPE_CHECKING:  # torch loads when a diagnosis is built, not when the command line is parsed
    import torch

    from probes.targets.target import CompileSettings

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# `--memory-budget` units, decimal and binary, and none for bytes ("B" too); case does not matter.
MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
}
_MEMORY_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")
DEFAULT_MODE = MODES[0]
DEFAULT_BACKEND = "inductor"
DEFAULT_OUT_ROOT = Path("compile-diagnose-out")


class RunDefaults(Protocol):
    """A preset's iteration counts (a LeRobot `Preset`, `ModuleRunDefaults`)."""

    @property
    def iters_inference(self) -> int: ...
    @property
    def iters_training(self) -> int: ...
    @property
    def warmup(self) -> int: ...


def benchmark_settings(
    defaults: RunDefaults,
    *,
    iters_inference: int | None = None,
    iters_training: int | None = None,
    warmup: int | None = None,
    seed: int = DEFAULT_SEED,
    autocast: str | None = None,
) -> BenchmarkSettings:
    """The benchmark's settings: the counts asked for, the preset's where none is asked."""
    return BenchmarkSettings(
        iters_inference=defaults.iters_inference if iters_inference is None else iters_inference,
        iters_training=defaults.iters_training if iters_training is None else iters_training,
        warmup=defaults.warmup if warmup is None else warmup,
        seed=seed,
        autocast=autocast,
    )


def compile_settings(
    mode: str | None, backend: str | None, how: str, *, backend_option: str = "backend"
) -> CompileSettings:
    """The compiled twin's settings, once the mode and backend are known to torch (None: the
    defaults, "default" and Inductor)."""
    from probes.targets.target import CompileSettings

    mode = mode or DEFAULT_MODE
    backend = backend or DEFAULT_BACKEND
    if mode not in MODES:
        raise UsageError(f"mode {mode!r}: choose from {', '.join(MODES)}")
    check_backend(backend, option=backend_option)
    return CompileSettings(mode=None if mode == "default" else mode, backend=backend, how=how)


def check_backend(backend: str, *, option: str = "backend") -> None:
    import torch._dynamo

    known = set(torch._dynamo.list_backends(exclude_tags=())) | {"inductor", "eager", "aot_eager"}
    if backend not in known:
        raise UsageError(f"{option} {backend}: unknown backend; known: {', '.join(sorted(known))}")


def resolve_device(requested: str | torch.device | None, *, option: str = "device") -> torch.device:
    """The device asked for, or CUDA when there is one; a device this machine lacks is an error."""
    import torch

    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UsageError(f"{option} {requested}: not a device (use cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"{option} {requested}: only cpu and cuda are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"{option} {requested}: CUDA is not available on this machine "
            f"(torch.cuda.is_available() is False); use {option} cpu"
        )
    return device


def memory_budget_request(
    requested: str | int | None, *, option: str = "memory_budget"
) -> int | None:
    """A stated memory budget in bytes: a number of bytes, or text such as 24GiB, 24G, 512MiB,
    1.5GB (G and GB are 10**9 bytes, GiB 2**30); None when none is stated."""
    if requested is None:
        return None
    if isinstance(requested, bool) or not isinstance(requested, int | str):
        raise UsageError(f"{option} {requested!r}: give a size such as 24GiB, 512MiB or bytes")
    size = requested if isinstance(requested, int) else _parse_size(requested, option)
    if size <= 0:
        raise UsageError(f"{option} {requested}: must be more than 0 bytes")
    return size


def _parse_size(text: str, option: str) -> int:
    match = _MEMORY_SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in MEMORY_UNITS:
        raise UsageError(
            f"{option} {text}: not a size; use e.g. 24GiB, 24G, 512MiB, 1.5GB or a number of bytes"
        )
    return int(float(match.group(1)) * MEMORY_UNITS[unit])


def selected_probes(probes: Iterable[str] | None) -> tuple[frozenset[str] | None, list[str]]:
    """The probes to run (None: all) and the notes that say what was selected and why."""
    if probes is None:
        return None, []
    if isinstance(probes, str):  # probes="graph_breaks" means one probe, not eleven letters
        probes = [probes]
    selected = set(probes)
    unknown = sorted(selected - set(PROBES))
    if unknown:
        raise UsageError(f"unknown probe {', '.join(unknown)}; probes: {', '.join(PROBES)}")
    notes = []
    needing = sorted(name for name in selected & set(NEEDS_BENCHMARK))
    if needing and BENCHMARK not in selected:
        selected.add(BENCHMARK)
        notes.append(
            f"{', '.join(needing)} measure(s) the benchmark's compiled copies: benchmark ran too"
        )
    skipped = [name for name in PROBES if name not in selected]
    notes.append(
        f"probes selected: {', '.join(p for p in PROBES if p in selected)}; "
        f"not run: {', '.join(skipped) or 'none'}"
    )
    return frozenset(selected), notes


def what_if_request(requested: str | Iterable[str], *, option: str = "what_if") -> tuple[str, ...]:
    """The what-ifs for speed asked for (`auto`, `none`, `all` or names), checked."""
    return _names_request(requested, option, WHAT_IFS, "what-if")


def compile_lever_request(
    requested: str | Iterable[str], *, option: str = "compile_lever"
) -> tuple[str, ...]:
    """The levers on compile time asked for (`auto`, `none`, `all` or names), checked."""
    return _names_request(requested, option, LEVERS, "compile lever")


def _names_request(
    requested: str | Iterable[str], option: str, choices: Sequence[str], what: str
) -> tuple[str, ...]:
    words = (requested,) if isinstance(requested, str) else tuple(requested)
    try:
        requested_what_ifs(words, choices, what)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
    return words


def out_dir(
    requested: str | Path | None, name: str | None = None, *, option: str = "out_dir"
) -> Path | None:
    """The output folder, made and checked writable; None when none is asked for and no name.

    With `name`, a missing folder defaults to ./compile-diagnose-out/<name>-<time>/ (commands);
    without it, no folder means no files (the Python API's `out_dir=None`).
    """
    if requested is None and name is None:
        return None
    path = Path(requested) if requested is not None else _timestamped(name or "diagnosis")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or error
        raise UsageError(f"{option} {path}: cannot write there ({reason})") from None
    return path


def _timestamped(name: str) -> Path:
    """<name>-<time>; under torchrun, <name>-<the launch's name>, which its ranks share."""
    from probes.distributed.request import launch_name

    return DEFAULT_OUT_ROOT / f"{name}-{launch_name() or f'{datetime.now():%Y%m%d-%H%M%S}'}"
