"""lerobot 0.6.1's PaliGemma at `paligemma_variant="gemma_300m"`, made callable.

pi0, pi05 and pi0_fast build PaliGemma with the vision projector's output fixed at 2048, the width
of gemma_2b's text model (`vision_config.projection_dim = 2048` in their modeling files). With
gemma_300m the text model is 1024 wide, so the first call fails where image and language
embeddings are concatenated. The tool replaces the projector's linear layer with one of the text
model's width, and says so in the diagnosis's notes: the rest of the model is lerobot's own.
"""

from __future__ import annotations

from torch import nn

from probes.targets.lerobot.random_init import fill_random_weights


def fit_vision_projector(policy: nn.Module, seed: int) -> str | None:
    """Make the vision projector's width the text model's; a note when it had to, else None."""
    for module in policy.modules():
        projector = getattr(getattr(module, "model", None), "multi_modal_projector", None)
        config = getattr(module, "config", None)
        text = getattr(config, "text_config", None)
        if projector is None or text is None:
            continue
        linear = projector.linear
        width = text.hidden_size
        if linear.out_features == width:
            return None
        fitted = nn.Linear(linear.in_features, width, bias=linear.bias is not None)
        fitted = fitted.to(device=linear.weight.device, dtype=linear.weight.dtype)
        fill_random_weights(fitted, seed)
        projector.linear = fitted
        return (
            f"lerobot 0.6.1 builds PaliGemma's vision projector {linear.out_features} wide "
            f"(gemma_2b's text width) whatever the variant; the text model here is {width} wide, "
            f"so the tool replaced the projector with a {linear.in_features}->{width} linear layer "
            "(random weights, as the rest)"
        )
    return None
