"""A factory for `compile-diagnose module`: torchvision's ResNet-18 with a cross-entropy loss.

    .venv/bin/compile-diagnose module examples/resnet18_module.py:make

Batch 4 of 3×64×64 images and 10 classes, random weights (nothing is downloaded). The diagnosis
times inference and a training step, says where each call's time goes, and tries the what-ifs
for speed the figures point to; `examples/README.md` has what it measured on a 2-core CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision


def make() -> tuple[torch.nn.Module, tuple[torch.Tensor], Callable, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    images = torch.randn(4, 3, 64, 64)
    labels = torch.randint(0, 10, (4,))

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, labels)

    return model, (images,), loss, (images,)
