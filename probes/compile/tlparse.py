"""Render the tlparse report of a compile trace, and read back what it lists.

tlparse (the PyTorch team's log parser, an optional extra) turns the structured compile trace into
HTML: every frame compiled, every graph break and recompile with its guard, compile times and
generated code. We run it and read its stable outputs: `compile_directory.json` (the compile ids
and their artifacts), the graph-break reason files it links there, and the stack trie of
`index.html` for each frame's function. A missing or failing tlparse is one line in `error`, never
an exception: the diagnosis and the trace survive it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from probes.compile.trace import parse_graph_break_reason
from probes.records.compile_trace import (
    LOG_PREFIX,
    REPORT_SUBDIR,
    TRACE_SUBDIR,
    ReportFrame,
    ReportGraphBreak,
    TlparseReport,
)
from probes.records.compile_trace import TLPARSE_INSTALL_HINT as INSTALL_HINT

VENV_BIN = Path(sys.executable).parent  # not resolved: a venv's python links out of the venv
# "[1/0_1]": frame 1, compile 0, attempt 1; "[!0/1/0]": under compiled autograd 0
_ATTEMPT = re.compile(r"^\[(?P<id>.+?)(?:_(?P<attempt>\d+))?\]$")
# <a href='#[1/0]' class='status-break'>[1/0]</a> /path/file.py:7 in forward<br>
_TRIE_FRAME = re.compile(
    r"<a href='#(?P<id>\[[^']+\])' class='status-(?P<status>[\w-]+)'>[^<]*</a>\s*"
    r"(?P<file>[^<\n]+):(?P<line>\d+) in (?P<function>[^<\n]+)<br>"
)
_RESTARTS = re.compile(r"(\d+) restart\(s\) and/or compilation failure\(s\)")
_STATS = re.compile(r"^Stats \{(?P<body>[^}]*)\}")


def find_tlparse(venv_bin: Path | None = VENV_BIN, search_path: str | None = None) -> str | None:
    """The tlparse next to this Python first (the extra installs it there), then on PATH.

    `search_path` replaces PATH for the lookup (None: the process's PATH).
    """
    if venv_bin is not None:
        found = shutil.which("tlparse", path=str(venv_bin))
        if found:
            return found
    return shutil.which("tlparse", path=search_path)


def latest_trace_log(diagnosis_dir: Path) -> Path | None:
    """The newest trace log of a diagnosis folder (one per process that compiled into it)."""
    trace_dir = Path(diagnosis_dir) / TRACE_SUBDIR
    logs = [p for p in trace_dir.glob(f"{LOG_PREFIX}*.log") if p.is_file()]
    return max(logs, key=lambda p: p.stat().st_mtime) if logs else None


def render_diagnosis_report(
    diagnosis_dir: Path,
    *,
    venv_bin: Path | None = VENV_BIN,
    search_path: str | None = None,
    timeout_s: float = 120.0,
) -> TlparseReport:
    """Render `<dir>/torch_trace/`'s newest log into `<dir>/tlparse/`."""
    diagnosis_dir = Path(diagnosis_dir)
    log = latest_trace_log(diagnosis_dir)
    if log is None:
        return TlparseReport(
            log=None,
            out_dir=diagnosis_dir / REPORT_SUBDIR,
            error=f"no compile trace in {diagnosis_dir / TRACE_SUBDIR}",
        )
    return render_report(
        log,
        diagnosis_dir / REPORT_SUBDIR,
        venv_bin=venv_bin,
        search_path=search_path,
        timeout_s=timeout_s,
    )


def render_report(
    log: Path,
    out_dir: Path,
    *,
    venv_bin: Path | None = VENV_BIN,
    search_path: str | None = None,
    timeout_s: float = 120.0,
) -> TlparseReport:
    """Run `tlparse LOG -o OUT --overwrite --no-browser` and read what the report lists.

    tlparse deletes `out_dir` first (--overwrite): give it a folder of its own.
    """
    report = TlparseReport(log=Path(log), out_dir=Path(out_dir))
    report.tlparse = find_tlparse(venv_bin, search_path)
    if report.tlparse is None:
        report.error = f"tlparse is not installed; for the compile report: {INSTALL_HINT}"
        return report
    if not report.log.exists():
        report.error = f"no compile trace log at {report.log}"
        return report
    if report.log.is_file() and report.log.stat().st_size == 0:
        report.error = f"the compile trace log {report.log} is empty: nothing compiled while it ran"
        return report
    started = time.perf_counter()
    report.error = _run(report, timeout_s)
    report.seconds = time.perf_counter() - started
    if report.error is None:
        _read_outputs(report)
    return report


def _run(report: TlparseReport, timeout_s: float) -> str | None:
    command = [report.tlparse, str(report.log), "-o", str(report.out_dir)]
    try:
        done = subprocess.run(
            [*command, "--overwrite", "--no-browser"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        report.tlparse_version = _version(report.tlparse)
    except subprocess.TimeoutExpired:
        return f"tlparse did not finish within {timeout_s:g} s on {report.log}"
    except OSError as error:
        return f"tlparse could not start: {error.strerror or error}"
    stderr = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    stats = next((line for line in stderr if _STATS.match(line)), None)
    report.stats = stats
    if done.returncode != 0:
        first = stderr[0] if stderr else "no message"
        return f"tlparse failed (exit {done.returncode}) on {report.log}: {first}"
    if stats is not None and not _read_any(stats):
        # tlparse exits 0 on an empty or corrupt log; its report would be empty
        why = next((line for line in stderr if line != stats), stats)
        return f"tlparse read no compile records from {report.log}: {why}"
    return None


def _read_any(stats: str) -> bool:
    match = re.search(r"\bok: (\d+)", stats)
    return match is not None and int(match.group(1)) > 0


def _version(executable: str) -> str | None:
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().removeprefix("tlparse ").strip() or None


def _read_outputs(report: TlparseReport) -> None:
    index = report.out_dir / "index.html"
    report.index_html = index if index.is_file() else None
    directory = report.out_dir / "compile_directory.json"
    try:
        listing = json.loads(directory.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        report.error = f"tlparse wrote no readable {directory.name}: {error}"
        return
    report.frames = _frames(listing)
    report.graph_breaks = _graph_breaks(report.out_dir, listing)
    if report.index_html is not None:
        page = report.index_html.read_text(encoding="utf-8", errors="replace")
        _add_stack_trie(report.frames, page)
        restarts = _RESTARTS.search(page)
        report.restarts_and_failures = int(restarts.group(1)) if restarts else 0


def _frames(listing: dict) -> list[ReportFrame]:
    frames: dict[str, ReportFrame] = {}
    for compile_id, entry in listing.items():
        frame_id = frame_id_of_attempt(compile_id)
        frame = frames.setdefault(frame_id, ReportFrame(frame_id, attempts=[], artifacts=[]))
        frame.attempts.append(compile_id)
        frame.artifacts += [a.get("name", "") for a in entry.get("artifacts", [])]
    return list(frames.values())


def _graph_breaks(out_dir: Path, listing: dict) -> list[ReportGraphBreak]:
    found = []
    for compile_id, entry in listing.items():
        for artifact in entry.get("artifacts", []):
            if not artifact.get("name", "").startswith("dynamo_graph_break_reason"):
                continue
            path = out_dir / artifact.get("url", "")
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
            filename, lineno, reason = parse_graph_break_reason(text)
            frame_id = frame_id_of_attempt(compile_id)
            found.append(ReportGraphBreak(frame_id, filename, lineno, reason, path))
    return found


def _add_stack_trie(frames: list[ReportFrame], page: str) -> None:
    by_id = {f.frame_id: f for f in frames}
    for match in _TRIE_FRAME.finditer(page):
        frame = by_id.get(frame_id_of_attempt(match["id"]))
        if frame is None or frame.function is not None:
            continue
        frame.function = html.unescape(match["function"].strip())
        frame.filename = html.unescape(match["file"].strip())
        frame.line = int(match["line"])
        frame.status = match["status"].removeprefix("status-")


def frame_id_of_attempt(compile_id: str) -> str:
    """`[1/0_1]` (attempt 1 of frame `[1/0]`) -> `[1/0]`."""
    match = _ATTEMPT.match(compile_id)
    return f"[{match['id']}]" if match else compile_id
