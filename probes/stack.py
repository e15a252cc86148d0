"""Where in the user's code something happened: stacks trimmed to the user's frames.

Dynamo reports graph breaks and failed guards with stacks that run through this tool, the user's
code and torch. The graph-break and recompile probes keep the user's part of them, with each
frame's source line and the user's function names (not the ones dynamo gives resumed code).
"""

from __future__ import annotations

import linecache
import os
import re
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from probes.records.location import SourceLocation

_TORCH_DIR = str(Path(torch.__file__).resolve().parent) + os.sep
# This tool's own frames, never the user's: `probes/` and the packages beside it.
_TOOL_DIRS = tuple(
    str(Path(__file__).resolve().parents[1] / d) + os.sep for d in ("probes", "analyzer")
)
_RESUME_NAME = re.compile(r"^torch_dynamo_resume_in_(?P<name>.+)_at_\d+$")
_FRAME_LINE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+?)\s*$')


def user_code_stack(frames: Sequence[SourceLocation]) -> list[SourceLocation]:
    """The frames of the user's code: drop the callers of this tool, torch, and the tool."""
    last_tool = max((i for i, f in enumerate(frames) if _is_tool_file(f.filename)), default=-1)
    return [f for f in frames[last_tool + 1 :] if not is_torch_file(f.filename)]


def code_location(filename: str, lineno: int, function: str = "") -> SourceLocation:
    """A location with the source line read from the file and dynamo's resume names undone."""
    match = _RESUME_NAME.match(function)
    if match:  # the code after a break runs in a function dynamo made: name the user's
        function = match["name"]
    return SourceLocation(filename, lineno, function, linecache.getline(filename, lineno).strip())


def parse_stack_lines(text: str) -> list[SourceLocation]:
    """Frames of a formatted traceback ('File "x.py", line 3, in f'), outermost first."""
    frames = []
    for line in text.splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            frames.append(code_location(match["file"], int(match["line"]), match["func"]))
    return frames


def frames_of_summaries(summaries: Sequence[traceback.FrameSummary]) -> list[SourceLocation]:
    """The locations of a `traceback.StackSummary` (as explain gives a break's user stack)."""
    return [code_location(s.filename, s.lineno or 0, s.name) for s in summaries]


def is_torch_file(filename: str) -> bool:
    return filename.startswith(_TORCH_DIR)


def _is_tool_file(filename: str) -> bool:
    return filename.startswith(_TOOL_DIRS)
