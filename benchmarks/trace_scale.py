"""How `compile-diagnose trace` scales with the size of the trace: time and peak memory.

A user's own trace of a few training steps is often hundreds of MB. This builds such traces from
a real one (the A100 AlexNet trace in `tests/data/traces/`, Kineto's Chrome-trace JSON): its
events repeated, each copy shifted past the one before in time and with its own correlation,
External and flow ids, to 10, 100 and 400 MB. On each, each in a fresh process of its own, it
runs `compile-diagnose trace FILE --json OUT` (on the file and on its gzipped twin), the trace
command alone (`analyzer.commands.trace.run`, without the start-up of the command line's other
commands), and a plain `json.load` of the file for scale, and prints the wall time, the CPU time
(user + system: what other work on the machine cannot inflate) and the peak resident memory
(the child's own `ru_maxrss`) of each; the runs' JSON summaries must agree. A first row per run
is its start-up, on a 17 kB trace. With `--baseline REV` the command and the command alone of
that git revision (unpacked with `git archive`; this checkout is left alone) run too.

    .venv/bin/python benchmarks/trace_scale.py [--sizes-mb 10 100 400] [--baseline REV]
                                               [--work DIR]

Needs about 1 GB of disk for the 400 MB size, and about 3 GB of memory for its `json.load`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TRACE = ROOT / "tests" / "data" / "traces" / "a100_alexnet_eager.pt.trace.json.gz"
METADATA = "M"  # process and thread names: written once, not repeated
# Ids that tie events together (launch to kernel, flow start to end): each copy gets its own.
ARG_IDS = ("correlation", "External id")
MB = 1_000_000

STARTUP_TRACE = ROOT / "tests" / "data" / "traces" / "a100_compiled_triton.pt.trace.json.gz"

# Each run as `python -c SCRIPT FILE OUT`: the command line as a user runs it,
CLI = (
    "import sys; from analyzer.cli import main; "
    "sys.exit(main(['trace', sys.argv[1], '--json', sys.argv[2]]))"
)
# the trace command alone (without the start-up of the command line's other commands),
ALONE = (
    "import argparse, sys; from pathlib import Path; from analyzer.commands.trace import run; "
    "sys.exit(run(argparse.Namespace(file=Path(sys.argv[1]), json=sys.argv[2], top=10)))"
)
# and the plain reading of the file, for scale.
JSON_LOAD = "import json, sys; json.load(open(sys.argv[1], 'rb'))"


# --- building a large trace ------------------------------------------------------------------


def read_source(path: Path) -> dict[str, Any]:
    return json.loads(gzip.decompress(path.read_bytes()))


def copy_of(event: dict[str, Any], shift_us: float, id_offset: int) -> dict[str, Any]:
    """An event of a later copy: later by `shift_us`, its ids moved by `id_offset`."""
    out = dict(event)
    if "ts" in out:
        out["ts"] = out["ts"] + shift_us
    if "id" in out:
        out["id"] = out["id"] + id_offset
    args = out.get("args")
    if isinstance(args, dict) and any(key in args for key in ARG_IDS):
        out["args"] = {k: v + id_offset if k in ARG_IDS else v for k, v in args.items()}
    return out


def repeated_events(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The source's metadata once, then its other events copy after copy, without end."""
    events = document["traceEvents"]
    timed = [e for e in events if e.get("ph") != METADATA]
    start = min(e["ts"] for e in timed)
    period_us = max(e["ts"] + e.get("dur", 0) for e in timed) - start + 1.0
    id_period = 1 + max(
        [e.get("id", 0) for e in timed]
        + [e.get("args", {}).get(key, 0) for e in timed for key in ARG_IDS]
    )
    yield from (e for e in events if e.get("ph") == METADATA)
    copy = 0
    while True:
        for event in timed:
            yield copy_of(event, copy * period_us, copy * id_period)
        copy += 1


@dataclass(frozen=True)
class BuiltTrace:
    path: Path
    size_bytes: int
    event_count: int


def build_trace(source: Path, size_bytes: int, dest: Path) -> BuiltTrace:
    """Write a trace of at least `size_bytes` (Kineto's layout, one event per block of lines)."""
    document = read_source(source)
    header = {k: v for k, v in document.items() if k != "traceEvents"}
    written, count = 0, 0
    with dest.open("w") as out:
        head = json.dumps(header, indent=2)[:-2]  # without the closing "\n}"
        written += out.write(head + ',\n  "traceEvents": [\n')
        for event in repeated_events(document):
            if count and written >= size_bytes:
                break
            text = ("" if count == 0 else ",\n") + json.dumps(event, indent=4)
            written += out.write(text)
            count += 1
        written += out.write("\n  ]\n}\n")
    return BuiltTrace(dest, dest.stat().st_size, count)


def gzipped(path: Path) -> Path:
    dest = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(dest, "wb", compresslevel=1) as out:
        shutil.copyfileobj(src, out, length=16 * MB)
    return dest


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    seconds: float  # wall time
    cpu_seconds: float  # user + system: what the machine's other work cannot inflate
    peak_rss_mb: float


@dataclass(frozen=True)
class Run:
    what: str
    script: str  # run as `python -c script FILE OUT`
    tree: Path  # the source tree it runs from


def measure(run: Run, trace: Path, out: Path) -> Measurement:
    """Time, CPU time and the child's own peak resident memory (`wait4`'s rusage, Linux: KiB)."""
    env = {**os.environ, "PYTHONPATH": str(run.tree)}
    command = [sys.executable, "-c", run.script, str(trace), str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=run.tree, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{run.what} on {trace} failed")
    return Measurement(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def runs(baseline: Path | None) -> list[Run]:
    """What is measured on each file: the command, the trace command alone, json.load."""
    before = [] if baseline is None else [Run("compile-diagnose trace, before", CLI, baseline)]
    alone_before = [] if baseline is None else [Run("trace command alone, before", ALONE, baseline)]
    return [
        *before,
        Run("compile-diagnose trace", CLI, ROOT),
        *alone_before,
        Run("trace command alone", ALONE, ROOT),
    ]


def baseline_tree(revision: str, dest: Path) -> Path:
    """The files of `revision`, unpacked into `dest` (the checkout itself is left alone)."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


HEADER = f"{'size':>8} {'events':>10}  {'what':<36} {'wall':>8} {'CPU':>8} {'peak RSS':>9}"


def row(size: str, events: int | str, what: str, m: Measurement) -> str:
    return (
        f"{size:>8} {events:>10}  {what:<36} {m.seconds:>6.2f} s {m.cpu_seconds:>6.2f} s "
        f"{m.peak_rss_mb:>6.0f} MB"
    )


def same_summaries(outputs: list[tuple[Path, Path]]) -> None:
    """Every run's JSON (out, of trace) must agree but for the file it names."""
    records = [json.loads(out.read_text().replace(str(trace), "FILE")) for out, trace in outputs]
    if any(record != records[0] for record in records):
        raise SystemExit(f"{[out for out, _ in outputs]} differ: the readers do not agree")


def measure_size(size_mb: int, work: Path, measured: list[Run]) -> None:
    trace = build_trace(SOURCE_TRACE, size_mb * MB, work / f"trace_{size_mb}mb.json")
    packed = gzipped(trace.path)
    size, events = f"{trace.size_bytes / MB:.0f} MB", f"{trace.event_count:,}"
    outputs = []
    for index, run in enumerate(measured):
        outputs.append((work / f"summary_{index}.json", trace.path))
        print(row(size, events, run.what, measure(run, *outputs[-1][::-1])), flush=True)
    gzip_run = Run("compile-diagnose trace, gzipped", CLI, ROOT)
    outputs.append((work / "summary_gz.json", packed))
    gz_size = f"{packed.stat().st_size / MB:.0f} MB gz"
    print(
        row(gz_size, events, gzip_run.what, measure(gzip_run, packed, outputs[-1][0])), flush=True
    )
    same_summaries(outputs)
    json_load = measure(Run("json.load, for scale", JSON_LOAD, ROOT), trace.path, work / "-")
    print(row(size, events, "json.load, for scale", json_load), flush=True)
    for path in (trace.path, packed, *(out for out, _ in outputs)):
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[10, 100, 400])
    parser.add_argument("--baseline", metavar="REV", help="also measure this git revision")
    parser.add_argument("--work", type=Path, help="where to build the traces (default: /tmp)")
    args = parser.parse_args()
    python = sys.version.split()[0]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python {python}")
    with tempfile.TemporaryDirectory(prefix="trace_scale_", dir=args.work) as temp:
        work = Path(temp)
        baseline = None
        if args.baseline:
            baseline = baseline_tree(args.baseline, Path(tempfile.mkdtemp(dir=work)))
        measured = runs(baseline)
        print(HEADER)
        tiny = work / "startup.json"
        for run in measured:  # what every run pays before it reads a byte of the trace
            print(row("startup", "-", run.what, measure(run, STARTUP_TRACE, tiny)), flush=True)
        for size in args.sizes_mb:
            measure_size(size, work, measured)


if __name__ == "__main__":
    main()
