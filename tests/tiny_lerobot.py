"""Tiny LeRobot inputs written with lerobot's own API, for tests that must stay offline and fast.

`write_tiny_dataset` records a LeRobotDataset (lerobot 0.6.1 format, images stored as PNG rather
than video, so no ffmpeg is needed); `write_tiny_act_checkpoint` saves an ACT policy folder the way
a training run's `checkpoints/last/pretrained_model` looks. Both return what a test needs to check
the reader against: the frames that were written, the policy that was saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lerobot.configs.types import PolicyFeature
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

STATE = "observation.state"
CAMERA = "observation.images.top"
ACTION = "action"
FPS = 10
DIM = 6
IMAGE_HW = 32

TINY_FEATURES = {
    STATE: {"dtype": "float32", "shape": (DIM,), "names": [f"joint_{i}" for i in range(DIM)]},
    CAMERA: {
        "dtype": "image",
        "shape": (IMAGE_HW, IMAGE_HW, 3),
        "names": ["height", "width", "channels"],
    },
    ACTION: {"dtype": "float32", "shape": (DIM,), "names": [f"joint_{i}" for i in range(DIM)]},
}


@dataclass
class TinyDataset:
    """A dataset on disk and the raw frames written into it, in recording order."""

    root: Path
    repo_id: str
    episode_lengths: list[int]
    states: np.ndarray  # (total_frames, DIM) float32
    actions: np.ndarray  # (total_frames, DIM) float32
    images: np.ndarray  # (total_frames, H, W, 3) uint8


def write_tiny_dataset(
    parent: Path, episode_lengths: tuple[int, ...] = (30, 30), seed: int = 0
) -> TinyDataset:
    """Record episodes of random state/action/image frames under `parent/tiny_dataset`."""
    root = parent / "tiny_dataset"
    repo_id = "local/tiny_dataset"
    rng = np.random.default_rng(seed)
    total = sum(episode_lengths)
    # Offsets and scales far from (0, 1) so that a batch that skipped normalisation is caught.
    states = (rng.normal(size=(total, DIM)) * 3.0 + 5.0).astype(np.float32)
    actions = (rng.normal(size=(total, DIM)) * 0.5 - 2.0).astype(np.float32)
    images = rng.integers(0, 256, size=(total, IMAGE_HW, IMAGE_HW, 3), dtype=np.uint8)

    dataset = LeRobotDataset.create(
        repo_id=repo_id, fps=FPS, features=TINY_FEATURES, root=root, use_videos=False
    )
    frame = 0
    for length in episode_lengths:
        for _ in range(length):
            dataset.add_frame(
                {
                    STATE: states[frame],
                    CAMERA: images[frame],
                    ACTION: actions[frame],
                    "task": "reach",
                }
            )
            frame += 1
        dataset.save_episode()
    dataset.finalize()
    return TinyDataset(root, repo_id, list(episode_lengths), states, actions, images)


def tiny_act_config(
    input_features: dict[str, PolicyFeature] | None = None,
    output_features: dict[str, PolicyFeature] | None = None,
) -> ACTConfig:
    """A small ACT (one layer each way, width 32, chunk 5) with random weights, on the CPU."""
    return ACTConfig(
        input_features=input_features or {},
        output_features=output_features or {},
        device="cpu",
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=1,
        chunk_size=5,
        n_action_steps=5,
        pretrained_backbone_weights=None,
        use_vae=False,
    )


def write_tiny_act_checkpoint(
    folder: Path,
    input_features: dict[str, PolicyFeature],
    output_features: dict[str, PolicyFeature],
    stats: dict,
) -> ACTPolicy:
    """Save a tiny ACT policy and its pre/post-processors to `folder`; return the saved policy."""
    config = tiny_act_config(input_features, output_features)
    policy = ACTPolicy(config)
    policy.save_pretrained(folder)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    preprocessor.save_pretrained(folder)
    postprocessor.save_pretrained(folder)
    return policy
