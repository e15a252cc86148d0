"""What every diagnosis command shares: run options, progress, running and showing a diagnosis.

Exit status, the same for every command: 0 healthy; 1 when an error-severity finding stands or,
when thresholds are set (`--fail-on` or the project's pyproject.toml), when one is violated (the
thresholds then decide alone: add `error` to them to keep failing on error findings); 2 for bad
usage, one line on stderr; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from analyzer.commands.gate import add_gate_options, requested_gate
from analyzer.comparison.targets import target_name
from analyzer.diagnosis import Diagnosis
from analyzer.errors import UsageError
from analyzer.gate import check_diagnosis
from analyzer.runner.settings import (
    DEFAULT_BACKEND,
    DEFAULT_OUT_ROOT,
    MODES,
    benchmark_settings,
    compile_lever_request,
    memory_budget_request,
    what_if_request,
)
from probes.records.compile_time import LEVERS, PORTABLE_CACHE
from probes.records.names import DEFAULT_DTYPE, DEFAULT_SEED, DTYPES, PROBES
from probes.records.speed import MAX_AUTOTUNE, WHAT_IF_AUTO, WHAT_IFS

if TYPE_CHECKING:  # torch loads when a diagnosis is built, not when the command line is parsed
    from analyzer.gate import Gate, GateResult
    from probes.targets.target import CompileSettings


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def probes_argument(text: str) -> tuple[str, ...]:
    """`--probes`: comma-separated probe names, checked as the line is parsed."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in PROBES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown probe {', '.join(unknown) or repr(text)}; probes: {', '.join(PROBES)}"
        )
    return names


def what_ifs_argument(text: str) -> tuple[str, ...]:
    """`--what-if`: auto, none, all, or comma-separated names, checked as the line is parsed."""
    try:
        return what_if_request(text, option="--what-if")
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--what-if: ")) from None


def compile_levers_argument(text: str) -> tuple[str, ...]:
    """`--compile-lever`: auto, none, all, or comma-separated names, checked as it is parsed."""
    try:
        return compile_lever_request(text, option="--compile-lever")
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--compile-lever: ")) from None


def memory_budget_argument(text: str) -> int | None:
    """`--memory-budget`: 24GiB, 24G, 512MiB, 1.5GB or bytes, checked as the line is parsed."""
    try:
        return memory_budget_request(text, option="--memory-budget")
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--memory-budget ")) from None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every diagnosis takes (policies and modules alike)."""
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="torch.compile mode (default: default; with --compile-how config, the config's "
        "compile_mode)",
    )
    parser.add_argument(
        "--backend", help=f"torch.compile backend (default: the preset's, else {DEFAULT_BACKEND})"
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        help="the floating-point dtype the model and its inputs are cast to (compared with an "
        f"fp64 reference by the harness's criterion for that dtype; default: {DEFAULT_DTYPE}, "
        "or for pi0 and pi05 their config's dtype, which this sets)",
    )
    parser.add_argument(
        "--probes",
        type=probes_argument,
        metavar="NAMES",
        help=f"run only these probes (comma-separated among {', '.join(PROBES)}; default: all, "
        "or those the preset names)",
    )
    parser.add_argument("--iters-inference", type=positive_int, help="timed inference calls")
    parser.add_argument("--iters-training", type=positive_int, help="timed training steps")
    parser.add_argument("--warmup", type=positive_int, help="untimed calls before timing")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed for weights and batches"
    )
    parser.add_argument(
        "--out", type=Path, help=f"output folder (default: ./{DEFAULT_OUT_ROOT}/<name>-<time>/)"
    )
    parser.add_argument(
        "--localize",
        action="store_true",
        default=None,
        help="always walk the modules for the first one where compiled and eager part ways "
        "(by default only when outputs diverge beyond the fp64 criterion without random numbers)",
    )
    parser.add_argument(
        "--cosine",
        action="store_true",
        help="pass compiled outputs on a cosine similarity of 0.99 with eager instead of the "
        "fp64 RMSE check (the dynamo benchmark harness's --cosine)",
    )
    parser.add_argument(
        "--bisect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bisect the compiler stage that makes compiled diverge from fp64 with torch's "
        "CompilerBisector (one compile per test): by default when the divergence is localized "
        "to a module that reproduces it compiled alone; --bisect also on the whole entry point "
        "when none does; --no-bisect never",
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
        "--what-if",
        type=what_ifs_argument,
        default=(WHAT_IF_AUTO,),
        metavar="auto|none|all|NAMES",
        help="what-ifs for speed, each one more compile timed against eager and the default: "
        f"auto (default: those the time attribution points to), none, all, or names among "
        f"{', '.join(WHAT_IFS)} (comma-separated; {MAX_AUTOTUNE} runs only when named or all)",
    )
    parser.add_argument(
        "--compile-lever",
        type=compile_levers_argument,
        default=(WHAT_IF_AUTO,),
        metavar="auto|none|all|NAMES",
        help="levers on compile time, each one more compile timed as the first: auto (default: "
        "those the compile's figures point to), none, all, or names among "
        f"{', '.join(LEVERS)} (comma-separated; {PORTABLE_CACHE} runs only when named or all)",
    )
    parser.add_argument(
        "--fresh-cache",
        action="store_true",
        help="compile with an empty, temporary Inductor cache (cold-start compile times); "
        "otherwise Inductor's cache (TORCHINDUCTOR_CACHE_DIR) is reused between runs",
    )
    parser.add_argument(
        "--memory-budget",
        type=memory_budget_argument,
        metavar="SIZE",
        help="the memory the probes may use beyond the built model (e.g. 24GiB, 24G, 512MiB, "
        "1.5GB), in place of the memory measured free on the device: a probe whose copies "
        "of the model do not fit is skipped, with what it needs",
    )
    parser.add_argument(
        "--markdown",
        metavar="PATH",
        help="also write the report as Markdown to PATH (always written to <out>/report.md)",
    )
    add_distributed_options(parser)
    add_json_option(parser, "the diagnosis")
    add_gate_options(parser, comparison=False)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    """The diagnosis on several processes: compiled DDP training as LeRobot's trainer runs it."""
    from probes.records.distributed import (
        AUTOCAST_DTYPES,
        COMPILE_AROUND_DDP,
        DDP_COMPILES,
        DEFAULT_FIND_UNUSED_PARAMETERS,
        DEFAULT_TIMEOUT_S,
    )

    parser.add_argument(
        "--nproc",
        type=positive_int,
        help="train under DDP on N processes started with torchrun (gloo on a CPU, NCCL on "
        "CUDA), torch.compile(DDP(model)), and merge what every rank measured; under torchrun "
        "or accelerate launch each process is a rank already",
    )
    parser.add_argument(
        "--autocast",
        choices=AUTOCAST_DTYPES,
        help="the training forward under torch.autocast in this dtype, as Accelerate's mixed "
        "precision in LeRobot's trainer (one process or --nproc)",
    )
    parser.add_argument(
        "--find-unused-parameters",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_FIND_UNUSED_PARAMETERS,
        help="with --nproc: DDP's find_unused_parameters (default: on, as LeRobot's trainer)",
    )
    parser.add_argument(
        "--bucket-cap-mb",
        type=positive_float,
        help="with --nproc: DDP's bucket_cap_mb (default: DDP's, 25)",
    )
    parser.add_argument(
        "--ddp-compile",
        choices=DDP_COMPILES,
        default=COMPILE_AROUND_DDP,
        help="with --nproc: wrapper: torch.compile(DDP(model)), which traces DDP's forward; "
        "model: the model compiled as --compile-how says, then DDP(model), whose forward stays "
        "eager (default: %(default)s)",
    )
    parser.add_argument(
        "--inside-ddp-trial",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --nproc and --ddp-compile wrapper: when DDP's own code breaks the graph on "
        "every rank, time the model compiled before DDP wraps it too (one more compile per "
        "rank; default: on)",
    )
    parser.add_argument(
        "--rank-timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="with --nproc: stop every rank when the launch runs longer (default: %(default)g)",
    )


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json [PATH]`, the same on every command: no PATH or "-" is stdout (then no table)."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help=f"write {what} as JSON to PATH, or to stdout with no PATH or '-' (then no table)",
    )


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
    """Write to a file, its missing folders made, or to stdout for "-"; an unwritable path is a
    usage error."""
    if destination == "-":
        sys.stdout.write(text.rstrip("\n") + "\n")
        return
    path = Path(destination)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{option} {destination}: cannot write ({error.strerror})") from None


def write_json_output(destination: str, text: str) -> None:
    write_text_output(destination, text, "--json")


def chosen_probes(args: argparse.Namespace, defaults: Any) -> tuple[Any, list[str]]:
    """The probes to run: --probes, else those the preset names (with its reason), else all."""
    if args.probes:
        return args.probes, []
    preset_probes = getattr(defaults, "probes", None)
    if preset_probes is None:
        return None, []
    return preset_probes, [f"the {defaults.name} preset: {defaults.why_these_probes}"]


EXIT_HEALTHY = 0
EXIT_ERROR_FINDING = 1
EXIT_GATE_FAILED = EXIT_ERROR_FINDING  # a threshold is violated: the run is not healthy either


def diagnose_and_show(
    args: argparse.Namespace,
    settings: CompileSettings,
    build: Callable[[], tuple[Any, Any]],
    out_dir: Path,
    recipe: Any = None,
) -> int:
    """Build the target (with progress on stderr), run the diagnosis, then show or write it.

    `settings` are the compiled twin's, checked before anything is built; `build()` returns the
    target and the defaults of its preset (iteration counts). With `--nproc`, or under torchrun,
    the ranks build the target from `recipe` (a `TargetRecipe`) instead.
    """
    from analyzer.runner.diagnose import diagnose
    from analyzer.runner.distributed import distributed_requested

    if distributed_requested(args.nproc):
        return diagnose_across_ranks(args, settings, recipe, out_dir)

    gate = requested_gate(args, comparison=False)  # a bad threshold stops before any build
    with progress_reporter(stderr_console()) as progress:
        progress("building the target and its inputs")
        target, defaults = build()
        benchmark = benchmark_settings(
            defaults,
            iters_inference=args.iters_inference,
            iters_training=args.iters_training,
            warmup=args.warmup,
            seed=args.seed,
            autocast=args.autocast,
        )
        probes, notes = chosen_probes(args, defaults)
        diagnosis = diagnose(
            target,
            settings,
            benchmark,
            command=args.command,
            out_dir=out_dir,
            probes=probes,
            notes=notes,
            progress=progress,
            localize=args.localize,
            bisect=args.bisect,
            cosine=args.cosine,
            rng_what_if=args.rng_what_if,
            what_if=args.what_if,
            compile_lever=args.compile_lever,
            fresh_cache=args.fresh_cache,
            memory_budget=args.memory_budget,
        )
    show(diagnosis, args)
    return _exit_status(diagnosis, args, gate)


def diagnose_across_ranks(
    args: argparse.Namespace, settings: CompileSettings, recipe: Any, out_dir: Path
) -> int:
    """`--nproc N`, or this process is a rank of torchrun: compiled DDP training on every rank,
    merged into one diagnosis that rank 0 (or this process, with --nproc) shows."""
    from analyzer.runner.distributed import diagnose_across_ranks as run_ranks
    from probes.records.benchmark import BenchmarkSettings
    from probes.records.distributed import DEFAULT_STEPS, DdpSettings

    if recipe is None:
        raise UsageError("this target cannot be built in another process: no --nproc for it")
    gate = requested_gate(args, comparison=False)  # a bad threshold stops before any launch
    ddp = DdpSettings(
        find_unused_parameters=args.find_unused_parameters,
        bucket_cap_mb=args.bucket_cap_mb,
        autocast=args.autocast,
        steps=args.iters_training or DEFAULT_STEPS,
        compile_where=args.ddp_compile,
        inside_ddp_trial=args.inside_ddp_trial,
    )
    with progress_reporter(stderr_console()) as progress:
        diagnosis = run_ranks(
            recipe,
            settings,
            ddp,
            BenchmarkSettings(seed=args.seed),
            nproc=args.nproc,
            out_dir=out_dir,
            command=args.command,
            progress=progress,
            timeout_s=args.rank_timeout,
        )
    if diagnosis is None:  # a rank other than 0: rank 0 shows the merge
        return EXIT_HEALTHY
    show(diagnosis, args)
    return _exit_status(diagnosis, args, gate)


def _exit_status(diagnosis: Diagnosis, args: argparse.Namespace, gate: Gate | None) -> int:
    """The gate's, where thresholds were asked for; else 1 on an error finding."""
    if gate is not None:
        record = diagnosis.to_dict()
        return finish_gate(args, check_diagnosis(gate, record, target_name(record)))
    return EXIT_ERROR_FINDING if diagnosis.has_errors else EXIT_HEALTHY


def finish_gate(args: argparse.Namespace, result: GateResult) -> int:
    """One line on stderr per violated threshold (or one saying all hold), `--junit`, the exit
    status."""
    from analyzer.render.gate import junit_xml, summary_line, violation_lines

    for line in violation_lines(result) or [summary_line(result)]:
        print(f"compile-diagnose: {line}", file=sys.stderr)
    if args.junit:
        write_text_output(args.junit, junit_xml([result]), "--junit")
    return EXIT_HEALTHY if result.passed else EXIT_GATE_FAILED


def show(diagnosis: Diagnosis, args: argparse.Namespace) -> None:
    """The report beside diagnosis.json, then JSON (--json) or the Rich view on stdout."""
    from analyzer.render.diagnosis import diagnosis_view
    from analyzer.render.report_markdown import report_markdown
    from analyzer.runner.writer import REPORT_HTML, write_html_report

    markdown = report_markdown(diagnosis.to_dict())
    html_path = None
    if diagnosis.out_dir is not None:
        (Path(diagnosis.out_dir) / "report.md").write_text(markdown, encoding="utf-8")
        html_path = write_html_report(diagnosis.to_dict(), Path(diagnosis.out_dir) / REPORT_HTML)
    if args.markdown:
        write_text_output(args.markdown, markdown, "--markdown")
    if args.json is not None:
        write_json_output(args.json, diagnosis.to_json())
        if args.json == "-":
            return
    Console().print(diagnosis_view(diagnosis.to_dict()))
    if html_path is not None:
        where = f"report with plots (opens offline): {html_path}"
        Console().print(where, style="dim", markup=False, highlight=False, soft_wrap=True)
