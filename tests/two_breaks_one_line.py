"""Modules whose one line makes dynamo report two different graph breaks.

`torch._dynamo.graph_break()` (GB0025) with a bound method of a plain Python object alive
across it: to resume after the break, dynamo must rebuild that method in bytecode and cannot
(GB0092, "Reconstruction failure"), so it runs the frame eager. Torch 2.11 logs both breaks at
the planted line. The line carries a marker comment (`# PLANTED: <name>`), found by
`planted.marker_line`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from planted import marker_line
from torch import nn

FILE = Path(__file__).resolve()


def planted_line(name: str) -> int:
    """The line number of the marker `# PLANTED: <name>` in this file."""
    return marker_line(FILE, name)


class Scale:
    """A plain Python object created inside `forward`: dynamo has no source to rebuild it from."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value

    def get(self) -> torch.Tensor:
        return self.value


class BreaksWithAMethodAlive(nn.Module):
    """A break while a bound method of a new `Scale` is alive: two breaks at one line."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x).relu()
        get = Scale(h).get
        torch._dynamo.graph_break()  # PLANTED: two-breaks
        return self.second(get())


class CallsIt(nn.Module):
    """The same, inside a call: explain lists the user-inserted break, the log both."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = BreaksWithAMethodAlive()
        self.outer = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(self.outer(x)))  # PLANTED: calls-inner
