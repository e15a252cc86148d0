"""The policies this tool can build, and the presets (shapes and config values) of each.

A preset is data: what LeRobot's benchmark ran (`reference`), a CPU size for a diagnosis in
minutes (`cpu`), and a size for tests (`tiny`). Add a policy by adding its `PolicySpec` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from probes.errors import TargetError


@dataclass(frozen=True)
class Preset:
    """A named set of shapes and config values a diagnosis runs with."""

    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    state_dim: int = 6
    action_dim: int = 6
    image_shape: tuple[int, int, int] | None = (3, 480, 640)
    camera: str = "observation.images.top"
    batch_size: int = 8
    iters_inference: int = 100
    iters_training: int = 50
    warmup: int = 10


@dataclass(frozen=True)
class PolicySpec:
    name: str
    inner_module: str  # the attribute holding the network, compiled by --compile-how model
    presets: dict[str, Preset]
    cuda_preset: str
    cpu_preset: str


ACT = PolicySpec(
    name="act",
    inner_module="model",
    presets={
        "reference": Preset(
            name="reference",
            description="as LeRobot's compile benchmark ran ACT for the reference report: "
            "use_vae=False, chunk_size=100, n_action_steps=10, dropout 0.1, resnet18, "
            "dim_model 512, batch 8, state/action dim 6, one 3x480x640 camera",
            config={"use_vae": False, "chunk_size": 100, "n_action_steps": 10, "dropout": 0.1},
        ),
        "cpu": Preset(
            name="cpu",
            description="a smaller ACT for CPUs, so a cold-cache diagnosis finishes in minutes: "
            "the reference settings (use_vae=False, dropout 0.1, batch 8, resnet18 backbone) with "
            "a 3x64x64 camera, dim_model 128, 2 heads, dim_feedforward 256, 1 encoder and "
            "1 decoder layer, chunk_size 20, n_action_steps 10",
            config={
                "use_vae": False,
                "chunk_size": 20,
                "n_action_steps": 10,
                "dropout": 0.1,
                "dim_model": 128,
                "n_heads": 2,
                "dim_feedforward": 256,
                "n_encoder_layers": 1,
                "n_decoder_layers": 1,
            },
            image_shape=(3, 64, 64),
            iters_inference=20,
            iters_training=10,
            warmup=3,
        ),
        "tiny": Preset(
            name="tiny",
            description="the smallest ACT that still has every part (resnet18 backbone on a "
            "3x32x32 camera, dim_model 32, 1 encoder and 1 decoder layer, chunk_size 10), batch 2: "
            "for tests and quick checks, not for figures",
            config={
                "use_vae": False,
                "chunk_size": 10,
                "n_action_steps": 5,
                "dropout": 0.1,
                "dim_model": 32,
                "n_heads": 2,
                "dim_feedforward": 64,
                "n_encoder_layers": 1,
                "n_decoder_layers": 1,
            },
            image_shape=(3, 32, 32),
            batch_size=2,
            iters_inference=3,
            iters_training=2,
            warmup=1,
        ),
    },
    cuda_preset="reference",
    cpu_preset="cpu",
)

POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in (ACT,)}


def policy_spec(name: str) -> PolicySpec:
    if name not in POLICIES:
        known = ", ".join(sorted(POLICIES))
        raise TargetError(f"unknown policy {name!r}; known policies: {known}")
    return POLICIES[name]


def choose_preset(spec: PolicySpec, requested: str | None, device: torch.device) -> Preset:
    name = requested or (spec.cuda_preset if device.type == "cuda" else spec.cpu_preset)
    if name not in spec.presets:
        known = ", ".join(spec.presets)
        raise TargetError(f"{spec.name} has no preset {name!r}; presets: {known}")
    return spec.presets[name]
