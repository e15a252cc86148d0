"""The parts that build pi0, pi05 and smolvla offline, each on something small and real.

The full-size builds are in `test_vla_policies.py`; here: the random weights filled once, the
vision projector fitted to the text width, the language inputs, the action-only queues, and
the config switch's compiled parts compiled again with the diagnosis's backend.
"""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from analyzer.commands.common import probes_argument
from probes.targets.lerobot.batches import (
    LANGUAGE_MASK_KEY,
    LANGUAGE_TOKENS_KEY,
    PROMPT_TOKENS,
    has_observation_queues,
    language_inputs,
    vocabulary_size,
)
from probes.targets.lerobot.compiled_copy import config_compile_mode, recompile_switched_parts
from probes.targets.lerobot.paligemma import fit_vision_projector
from probes.targets.lerobot.presets import POLICIES
from probes.targets.lerobot.random_init import (
    INIT_STD,
    fill_random_weights,
    initialisation_skipped,
)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(300, 64, padding_idx=0)
        self.linear = nn.Linear(64, 512)
        self.norm = nn.LayerNorm(512)
        self.scale = nn.Parameter(torch.ones(3))  # made by torch.ones: initialised even skipped


def test_skipped_initialisation_is_filled_once_seeded_and_restored() -> None:
    reference = nn.Linear(4, 4)  # torch's own init before and after: the patch is given back
    with initialisation_skipped():
        first = Block()
    fill_random_weights(first, seed=3)
    with initialisation_skipped():
        second = Block()
    fill_random_weights(second, seed=3)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # the same seed gives the same weights
    assert abs(first.linear.weight.std().item() - INIT_STD) < 0.002
    assert torch.count_nonzero(first.linear.bias) == 0
    assert torch.count_nonzero(first.embed.weight[0]) == 0  # the padding row
    assert torch.equal(first.norm.weight, torch.ones(512))  # its own reset_parameters
    assert torch.equal(first.scale, torch.ones(3))
    after = nn.Linear(4, 4)
    assert after.weight.std() > 0.1 and reference.weight.std() > 0.1  # kaiming, not skipped


def tiny_paligemma(projection_dim: int) -> nn.Module:
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    config = PaliGemmaConfig(
        text_config={
            "model_type": "gemma",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "vocab_size": 128,
        },
        vision_config={
            "hidden_size": 24,
            "intermediate_size": 48,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 16,
            "projection_dim": projection_dim,
        },
        projection_dim=projection_dim,
    )
    config.vision_config.projection_dim = projection_dim
    return PaliGemmaForConditionalGeneration(config)


def test_the_vision_projector_is_fitted_to_the_text_width_and_said() -> None:
    holder = nn.Module()
    holder.paligemma = tiny_paligemma(projection_dim=48)  # as lerobot's 2048 against 1024
    note = fit_vision_projector(holder, seed=0)
    linear = holder.paligemma.model.multi_modal_projector.linear
    assert (linear.in_features, linear.out_features) == (24, 32)
    assert note is not None and "24->32" in note and "48 wide" in note
    assert vocabulary_size(holder) == 128
    assert fit_vision_projector(holder, seed=0) is None  # fitted already: nothing to say


def test_language_inputs_are_a_padded_prompt_below_the_vocabulary() -> None:
    inputs = language_inputs(3, 48, 100, torch.device("cpu"), seed=1)
    tokens, mask = inputs[LANGUAGE_TOKENS_KEY], inputs[LANGUAGE_MASK_KEY]
    assert tokens.shape == mask.shape == (3, 48)
    assert tokens.dtype == torch.long and mask.dtype == torch.bool
    assert mask[:, :PROMPT_TOKENS].all() and not mask[:, PROMPT_TOKENS:].any()
    assert int(tokens.max()) < 100 and torch.count_nonzero(tokens[:, PROMPT_TOKENS:]) == 0
    assert torch.equal(
        tokens, language_inputs(3, 48, 100, torch.device("cpu"), seed=1)[LANGUAGE_TOKENS_KEY]
    )
    short = language_inputs(1, 4, 100, torch.device("cpu"), seed=1)[LANGUAGE_MASK_KEY]
    assert short.all()  # a config shorter than the prompt: all of it is prompt


def test_a_queue_of_actions_only_is_not_an_observation_queue() -> None:
    from collections import deque

    policy = nn.Module()
    policy._queues = {"action": deque(maxlen=3)}  # pi0, pi05, smolvla
    assert not has_observation_queues(policy)
    policy._queues["observation.state"] = deque(maxlen=2)  # diffusion, vqbet
    assert has_observation_queues(policy)


class Switched(nn.Module):
    """A model whose config switch compiled two of its methods, as pi0's does."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.sample = torch.compile(self.sample_eager)

    def sample_eager(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).relu()


def test_the_parts_a_config_switch_compiled_are_compiled_again_with_the_backend_asked() -> None:
    from torch._dynamo.testing import CompileCounterWithBackend

    holder = nn.Module()
    holder.model = Switched()
    counter = CompileCounterWithBackend("eager")
    assert recompile_switched_parts(holder, {"backend": counter}) == ["model.sample"]
    torch._dynamo.reset()
    holder.model.sample(torch.ones(2, 3))
    assert counter.frame_count == 1  # the recompiled part ran through the backend asked


def test_the_config_switch_compiles_in_the_config_mode_unless_overridden() -> None:
    pi0 = POLICIES["pi0"]
    preset = pi0.presets["cpu"]
    assert config_compile_mode(pi0, preset, {}) == "max-autotune"
    assert config_compile_mode(pi0, preset, {"compile_mode": "default"}) == "default"
    assert pi0.default_compile_how == "config" and POLICIES["act"].default_compile_how == "model"


def test_probes_are_checked_as_the_command_line_is_parsed() -> None:
    assert probes_argument("graph_breaks, recompiles") == ("graph_breaks", "recompiles")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown probe graph_brakes"):
        probes_argument("graph_brakes")
