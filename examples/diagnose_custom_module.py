"""Diagnose torch.compile on a model of your own, end to end, with the Python API.

The model below has two things torch.compile handles badly, planted on purpose:
- a graph break: `.item()` reads a tensor into a Python float in the middle of `forward`;
- a recompile: that float is then used as a Python number, so dynamo guards on its value and
  compiles the code after the break again when the value changes (here: on the training batch).

    .venv/bin/python examples/diagnose_custom_module.py [--backend inductor] [--out DIR]

The default backend is aot_eager, which compiles in seconds on a CPU; `--backend inductor` is
what `torch.compile` uses by default (minutes on a small CPU). The findings name this file and
the lines below; everything measured lands in `<out>/diagnosis.json`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from analyzer import diagnose_module


class GatedMLP(nn.Module):
    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(16, width), nn.GELU(), nn.Linear(width, width))
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        gate = h.sigmoid().mean().item()  # graph break: a tensor read into a Python float
        return self.head(h * gate)  # recompile: dynamo guards on the float's value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="aot_eager")
    parser.add_argument("--out", type=Path, default=Path("compile-diagnose-out/custom-module"))
    args = parser.parse_args()

    torch.manual_seed(0)
    model = GatedMLP()
    inputs = (torch.randn(32, 16),)
    train_inputs = (torch.randn(32, 16),)  # another batch: another gate value, a recompile
    targets = torch.randn(32, 4)

    diagnosis = diagnose_module(
        model,
        inputs,
        train_inputs=train_inputs,
        loss_fn=lambda output: nn.functional.mse_loss(output, targets),
        backend=args.backend,
        out_dir=args.out,
    )
    for finding in diagnosis.findings:
        where = f" at {finding.location}" if finding.location else ""
        print(f"{finding.code} {finding.severity:<7} {finding.title}{where}")
    metrics = diagnosis.reference_metrics or {}
    print(
        f"speedup: inference {metrics.get('speedup_inference')}, "
        f"training {metrics.get('speedup_training')}"
    )
    print(f"everything measured: {args.out / 'diagnosis.json'}")


if __name__ == "__main__":
    main()
