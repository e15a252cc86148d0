"""What every diagnosis command shares: run options, their checks, progress and the report."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from rich.console import Console

from analyzer.errors import UsageError

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every diagnosis takes (policies and modules alike)."""
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--mode", default="default", choices=MODES, help="torch.compile mode")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--iters-inference", type=positive_int, help="timed inference calls")
    parser.add_argument("--iters-training", type=positive_int, help="timed training steps")
    parser.add_argument("--warmup", type=positive_int, help="untimed calls before timing")
    parser.add_argument("--seed", type=int, default=42, help="seed for weights and batches")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: ./compile-diagnose-out/<name>-<time>/)"
    )
    parser.add_argument(
        "--localize",
        action="store_true",
        default=None,
        help="always walk the modules for the first one where compiled and eager part ways "
        "(by default only when outputs diverge beyond the fp64 criterion without random numbers)",
    )
    parser.add_argument(
        "--rng-what-if",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the training step once more with every dropout off, to tell random "
        "numbers from arithmetic in a training difference (default: on CUDA yes, on a CPU no: "
        "there it is one more full compile)",
    )
    parser.add_argument(
        "--fresh-cache",
        action="store_true",
        help="compile with an empty, temporary Inductor cache (cold-start compile times); "
        "otherwise Inductor's cache (TORCHINDUCTOR_CACHE_DIR) is reused between runs",
    )
    parser.add_argument(
        "--markdown",
        metavar="PATH",
        help="also write the report as Markdown to PATH (always written to <out>/report.md)",
    )
    add_json_option(parser, "the diagnosis")


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json [PATH]`, the same on every command: no PATH or "-" is stdout (then no table)."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help=f"write {what} as JSON to PATH, or to stdout with no PATH or '-' (then no table)",
    )


def resolve_device(requested: str | None):
    import torch

    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UsageError(f"--device {requested}: not a device (use cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {requested}: only cpu and cuda are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"--device {requested}: CUDA is not available on this machine "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    return device


def check_backend(backend: str) -> None:
    import torch._dynamo

    known = set(torch._dynamo.list_backends(exclude_tags=())) | {"inductor", "eager", "aot_eager"}
    if backend not in known:
        raise UsageError(f"--backend {backend}: unknown backend; known: {', '.join(sorted(known))}")


def prepare_out_dir(requested: Path | None, name: str) -> Path:
    out = requested or Path("compile-diagnose-out") / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write there ({error.strerror or error})") from None
    return out


@contextlib.contextmanager
def progress_reporter(console: Console) -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time on a terminal; silence when output goes to a file or pipe."""
    if not console.is_terminal:
        yield lambda _text: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda text: progress.update(task, description=text)


def stderr_console() -> Console:
    return Console(file=sys.stderr)


def write_text_output(destination: str, text: str, option: str) -> None:
    """Write to a file, or to stdout for "-"; an unwritable path is a usage error."""
    if destination == "-":
        sys.stdout.write(text.rstrip("\n") + "\n")
        return
    try:
        Path(destination).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{option} {destination}: cannot write ({error.strerror})") from None


def write_json_output(destination: str, text: str) -> None:
    write_text_output(destination, text, "--json")
