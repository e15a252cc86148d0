"""Random weights for a billion-parameter policy in seconds, not a minute.

Building pi0 from its config initialises every weight twice: torch's default init as each layer is
made, then transformers' `init_weights` over the whole model (57 s for pi0 at its smallest size on
a 2-core CPU). A diagnosis needs random weights, not those particular ones: the policy is built
with both skipped (`transformers.initialization.no_init_weights`), then each layer torch's init
functions would have filled is filled once, from a seeded generator, as transformers initialises
these models: weights normal with a standard deviation of 0.02, biases zero, normalisation layers
as their own `reset_parameters` makes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

INIT_STD = 0.02  # transformers' initializer_range for Gemma, PaliGemma and SigLIP
# The layers whose parameters torch's patched init functions leave unset (everything else in
# these models makes its parameters with torch.zeros, ones or randn, which still run).
FILLED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)
RESET_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)


@contextlib.contextmanager
def initialisation_skipped() -> Iterator[None]:
    """Build modules inside without running any weight initialisation (restored on exit)."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        yield


def fill_random_weights(module: nn.Module, seed: int) -> None:
    """Give every layer that `initialisation_skipped` left unset its random weights, seeded."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, FILLED_LAYERS):
                _fill_layer(layer, generator)
            elif isinstance(layer, RESET_LAYERS):
                layer.reset_parameters()


def _fill_layer(layer: nn.Module, generator: torch.Generator) -> None:
    weight = layer.weight
    values = torch.empty(weight.shape, dtype=torch.float32).normal_(
        0, INIT_STD, generator=generator
    )
    weight.copy_(values)  # drawn on the CPU in float32, whatever the layer's device and dtype
    bias = getattr(layer, "bias", None)
    if bias is not None:
        bias.zero_()
    padding = getattr(layer, "padding_idx", None)
    if padding is not None:
        weight[padding].zero_()
