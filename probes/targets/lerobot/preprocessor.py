"""A policy's pre-processor, the pipeline between raw frames and the policy (normalise, move).

A dataset's batch goes through the pre-processor lerobot builds for the config and the dataset's
stats; a checkpoint brings its own (`probes.targets.lerobot.checkpoint`). Either is pointed at the
diagnosis's device, whatever device it was saved with.
"""

from __future__ import annotations

from typing import Any

from probes.targets.lerobot.packages import extra_required


def policy_preprocessor(config: Any, stats: dict[str, dict[str, Any]] | None) -> Any:
    """lerobot's pre-processor for the config, normalising with `stats` (None: no stats)."""
    from lerobot.policies.factory import make_pre_post_processors

    with extra_required(config.type):
        preprocessor, _ = make_pre_post_processors(config, dataset_stats=stats)
    return preprocessor


def retarget_device(preprocessor: Any, device: str) -> None:
    """Point the pre-processor's device step at `device`, whatever device it was saved with.

    lerobot-eval does the same with an override of `device_processor`; an override fails when a
    pipeline has no such step, so the step is replaced here instead.
    """
    from lerobot.processor import DeviceProcessorStep

    preprocessor.steps = [
        DeviceProcessorStep(device=device, float_dtype=step.float_dtype)
        if isinstance(step, DeviceProcessorStep)
        else step
        for step in preprocessor.steps
    ]
