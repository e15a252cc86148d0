"""Models planted for the distributed tests: each rank's worker builds them again by path
(`compile-diagnose module tests/distributed_planted.py:FACTORY --nproc 2`).

No tests here: the factories read the rank torchrun gave their process, so that one rank
behaves otherwise than the others. `loss_fn` is called once when the target is built
(`probes.targets.module` checks the training step), once by the compiling step, then once per
warm step: its third call is the first warm step.
"""

from __future__ import annotations

import itertools
import os
import signal

import torch
from torch import nn

WIDTH = 8
FIRST_WARM_STEP = 3  # loss_fn's call that is the first warm step


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(WIDTH, 16), nn.ReLU(), nn.Linear(16, 4))


ROWS = 4  # the rows of the batch the model trains on; rank 1 halves it (rank_dependent_shape)


class FirstRows(nn.Module):
    """The planted model: a small MLP on the first `ROWS` rows of its batch."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = _small_model()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.mlp(batch[:ROWS])


def rank_dependent_shape():
    """Rank 1 trains on 2 rows from its second warm step on, rank 0 on 4 throughout.

    The row count is a global the compiled forward reads: dynamo guards on it, so the change
    recompiles rank 1's forward and not rank 0's.
    """

    calls = itertools.count(1)

    def loss_fn(output: torch.Tensor) -> torch.Tensor:
        global ROWS
        if next(calls) == FIRST_WARM_STEP and _rank() == 1:
            ROWS = 2  # read by the next forward: the first warm step's is done
        return output.square().mean()

    batch = torch.randn(4, WIDTH)
    return FirstRows(), (batch,), loss_fn, (batch,)


def small_mlp():
    """The same MLP on every rank, nothing planted: what the ranks share is the only question."""
    batch = torch.randn(4, WIDTH)
    return _small_model(), (batch,), lambda output: output.square().mean(), (batch,)


def killed_rank():
    """Rank 1 kills itself (SIGKILL) in its first warm step, after its compile phase."""
    calls = itertools.count(1)

    def loss_fn(output: torch.Tensor) -> torch.Tensor:
        if next(calls) == FIRST_WARM_STEP and _rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return output.square().mean()

    batch = torch.randn(4, WIDTH)
    return _small_model(), (batch,), loss_fn, (batch,)


def small_first_bucket():
    """The issue's case: 8 Linear layers of 256, to be wrapped with bucket_cap_mb=0.5."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(8)])
    batch = torch.randn(8, 256)
    return model, (batch,), lambda output: output.square().mean(), (batch,)
