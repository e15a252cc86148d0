"""A small module with one planted graph break, for the compile trace and tlparse tests.

The planted line carries the marker `# PLANTED: item`; tests find it by searching this file, so
editing the file never breaks them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from planted import marker_line
from torch import nn

from probes.compile.trace import record_compile_trace
from probes.records.compile_trace import CompileTraceRecord

FILE = Path(__file__).resolve()


def planted_line(name: str) -> int:
    """The line number of the marker `# PLANTED: <name>` in this file."""
    return marker_line(FILE, name)


class ReadsScalar(nn.Module):
    """Reads a tensor's value into Python mid-forward: dynamo ends the graph there."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        scale = y.abs().sum().item()  # PLANTED: item
        return y * 2 + scale


def trace_planted_break(out_dir: Path) -> CompileTraceRecord:
    """Compile `ReadsScalar` with aot_eager and run it once, recording the compile trace.

    Resets dynamo first: a module of the same code compiled earlier in the session would pass
    its guards and not compile again.
    """
    torch.compiler.reset()
    torch.manual_seed(0)
    compiled = torch.compile(ReadsScalar(), backend="aot_eager")
    with record_compile_trace(out_dir) as record:
        compiled(torch.ones(2, 4))
    return record
