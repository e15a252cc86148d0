"""A rank's graph breaks from dynamo's `graph_breaks` log, each told as DDP's, Accelerate's or
the user's by the file it happened in.

Under DDP the user's model runs inside `DistributedDataParallel.forward`, so every break's stack
runs through DDP's file: the origin is the innermost frame that is neither Python's standard
library (a `contextlib` helper DDP uses) nor torch outside its distributed code (`nn.Module`'s
call, dynamo's wrappers). That frame is DDP's (`torch/nn/parallel/distributed.py`,
`torch/distributed/`), Accelerate's (`accelerate/`), or the user's.
"""

from __future__ import annotations

import re
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from probes.records.distributed import (
    BREAK_IN_ACCELERATE,
    BREAK_IN_DDP,
    BREAK_IN_USER,
    RankBreak,
)
from probes.records.location import SourceLocation
from probes.stack import is_torch_file, parse_stack_lines

# Path fragments (with "/" separators) of the code that is DDP's or Accelerate's own.
DDP_FILES = ("torch/nn/parallel/distributed.py", "torch/distributed/")
ACCELERATE_FILES = ("/accelerate/",)
_STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve())
_GB_ID = re.compile(r"/gb/(gb\d+)\.html", re.IGNORECASE)
_TRACEBACK = "User code traceback:"


def rank_breaks(messages: Sequence[str]) -> list[RankBreak]:
    """The distinct breaks (same place, same reason) of the logged messages, with their hits."""
    distinct: dict[tuple[object, str], RankBreak] = {}
    for message in messages:
        parsed = parse_break(message)
        if parsed is None:
            continue
        key = (parsed.location, parsed.gb_id or parsed.reason)
        if key in distinct:
            distinct[key].hits += 1
        else:
            distinct[key] = parsed
    return list(distinct.values())


def parse_break(message: str) -> RankBreak | None:
    """One logged graph break: its reason, its torch id and the frame that decides its origin."""
    body, _, stack_text = message.partition(_TRACEBACK)
    frames = parse_stack_lines(stack_text)
    if not frames:
        return None
    location, origin = break_origin(frames)
    found = _GB_ID.search(body)
    return RankBreak(
        origin=origin,
        reason=_reason(body),
        location=location,
        gb_id=found.group(1).upper() if found else None,
    )


def break_origin(frames: Sequence[SourceLocation]) -> tuple[SourceLocation, str]:
    """The innermost frame that tells whose code broke the graph, and whose it is."""
    for frame in reversed(frames):
        origin = file_origin(frame.filename)
        if origin is not None:
            return frame, origin
    return frames[-1], BREAK_IN_USER


def file_origin(filename: str) -> str | None:
    """DDP's, Accelerate's or the user's; None for a file that says nothing (stdlib, torch)."""
    posix = Path(filename).as_posix()
    if any(part in posix for part in DDP_FILES):
        return BREAK_IN_DDP
    if any(part in posix for part in ACCELERATE_FILES):
        return BREAK_IN_ACCELERATE
    if is_torch_file(filename) or _is_stdlib(filename):
        return None
    return BREAK_IN_USER


def _is_stdlib(filename: str) -> bool:
    resolved = str(Path(filename).resolve())
    return resolved.startswith(_STDLIB) and "site-packages" not in resolved


def _reason(body: str) -> str:
    """The break type dynamo names (the line after its "Encountered graph break ..." preamble)."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    lines = [line for line in lines[1:] if not line.startswith("Graph Break Reason:")]
    return lines[0] if lines else body.strip().splitlines()[0]
