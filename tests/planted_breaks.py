"""Small modules that each plant one thing dynamo cannot keep in one graph.

Each planted line carries a marker comment (`# PLANTED: <name>`): tests find the line by
searching this file for the marker, so editing the file never breaks them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from planted import marker_line
from torch import nn

FILE = Path(__file__).resolve()
log = logging.getLogger(__name__)


def planted_line(name: str) -> int:
    """The line number of the marker `# PLANTED: <name>` in this file."""
    return marker_line(FILE, name)


class Prints(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        print("y computed")  # PLANTED: print
        return y + 1


class PrintsFirst(nn.Module):
    """The break is the first line: the graph before it is empty, so explain lists no graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("forward called")  # PLANTED: print-first
        return x * 2 + 1


class Logs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        log.info("y computed")  # PLANTED: logging
        return y + 1


class Branches(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        if y.sum() > 0:  # PLANTED: branch
            y = y - 1
        return y + 1


class ReadsList(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        values = y.tolist()  # PLANTED: tolist
        return torch.tensor(values) + 1


class ReadsScalar(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        scale = y.sum().item()  # PLANTED: item
        return y * scale


class CallsNumpy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        z = np.interp(y.numpy(), [0.0, 1.0], [0.0, 2.0])  # PLANTED: numpy
        return torch.as_tensor(z) + 1


class LoopsOverBatch(nn.Module):
    """A Python loop over the batch size: dynamo unrolls it into a graph for that one size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        for i in range(x.shape[0]):  # PLANTED: shape-loop
            y = y + i
        return y


class Scales(nn.Module):
    """The same arithmetic with no loop: nothing in it depends on the batch size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1


def read_scalar(t: torch.Tensor) -> float:
    return t.sum().item()  # PLANTED: helper-item


class ReadsThrice(nn.Module):
    """One break, in a helper called from three places."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = read_scalar(x)  # PLANTED: helper-call
        b = read_scalar(x * 2)
        c = read_scalar(x * 3)
        return x + a + b + c


class ReadsInLoop(nn.Module):
    """A break inside a loop: dynamo cannot resume there and runs the whole call eagerly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for i in range(3):
            total = total + (x * i).sum().item()  # PLANTED: loop-item
        return x + total
