"""Synthetic batches shaped by a policy config's features, and the observations a policy queues.

Values are in the range a pre-processor produces: states, actions and rewards standard normal
(as after mean/std normalisation), images uniform in [0, 1]. Real batches from a local dataset
are `probes.targets.lerobot.dataset`'s.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

REWARD_KEY = "next.reward"  # lerobot's REWARD: the only non-observation key with delta indices
INDEX_KEY = "index"  # every dataset frame has one; tdmpc reads the batch size from it
ACTION_KEY = "action"  # lerobot's ACTION: the one queue that is not an observation's
ACTION_TOKENS_KEY = "action.tokens"  # lerobot's ACTION_TOKENS: pi0_fast's training targets
# What a language-conditioned policy's tokenizer step adds (lerobot's OBS_LANGUAGE_TOKENS and
# OBS_LANGUAGE_ATTENTION_MASK): token ids padded to the config's `tokenizer_max_length`.
LANGUAGE_TOKENS_KEY = "observation.language.tokens"
LANGUAGE_MASK_KEY = "observation.language.attention_mask"
PROMPT_TOKENS = 16  # the prompt's length in tokens: a short task, the rest padding


def synthetic_batch(
    config: Any, batch_size: int, device: torch.device, *, training: bool, seed: int
) -> dict[str, torch.Tensor]:
    """A batch shaped as LeRobot's dataset and pre-processor would give this config.

    An inference batch is what `select_action` receives: one current observation per feature,
    `(B, *shape)`. A training batch is what `forward` receives: every key the config gives delta
    indices (observations, action, reward) carries that many steps, `(B, steps, *shape)`, and a
    `<key>_is_pad` mask `(B, steps)` (all False: no padding), as the dataset adds them; plus the
    frame `index`.
    """
    generator = torch.Generator().manual_seed(seed)
    batch: dict[str, torch.Tensor] = {}
    observation_steps = config.observation_delta_indices if training else None
    for key, feature in config.input_features.items():
        batch.update(_feature_steps(key, feature, observation_steps, batch_size, generator))
    if training:
        for key, feature in config.output_features.items():
            batch.update(
                _feature_steps(key, feature, config.action_delta_indices, batch_size, generator)
            )
        if config.reward_delta_indices is not None:
            batch.update(
                _steps(REWARD_KEY, (), config.reward_delta_indices, batch_size, generator, False)
            )
        batch[INDEX_KEY] = torch.arange(batch_size)
    return {key: value.to(device) for key, value in batch.items()}


def language_inputs(
    batch_size: int, length: int, vocabulary: int, device: torch.device, *, seed: int
) -> dict[str, torch.Tensor]:
    """Token ids and their mask as a tokenizer gives a short task padded to `length`.

    The first `PROMPT_TOKENS` positions (or all, when fewer) hold ids drawn below `vocabulary`
    with the mask True; the rest are padding (id 0, mask False), as `padding="max_length"` pads.
    No tokenizer is needed: the model reads ids, and any id below its vocabulary is one it embeds.
    """
    generator = torch.Generator().manual_seed(seed)
    prompt = min(PROMPT_TOKENS, length)
    tokens = torch.zeros((batch_size, length), dtype=torch.long)
    tokens[:, :prompt] = torch.randint(vocabulary, (batch_size, prompt), generator=generator)
    mask = torch.zeros((batch_size, length), dtype=torch.bool)
    mask[:, :prompt] = True
    return {LANGUAGE_TOKENS_KEY: tokens.to(device), LANGUAGE_MASK_KEY: mask.to(device)}


def fast_action_tokens(config: Any, policy: nn.Module, action: torch.Tensor) -> dict[str, Any]:
    """pi0_fast's training targets: the batch's actions tokenized by lerobot's own
    `ActionTokenizerProcessorStep`, with the policy's action tokenizer and its config's text
    tokenizer (local folders), as its pre-processor adds them. Empty for other policies."""
    tokenizer = getattr(policy, "action_tokenizer", None)
    if tokenizer is None or not hasattr(config, "max_action_tokens"):
        return {}
    from lerobot.lerobot_types import TransitionKey
    from lerobot.processor.tokenizer_processor import ActionTokenizerProcessorStep

    step = ActionTokenizerProcessorStep(
        action_tokenizer_input_object=tokenizer,
        paligemma_tokenizer_name=config.text_tokenizer_name,
        max_action_tokens=config.max_action_tokens,
        fast_skip_tokens=config.fast_skip_tokens,
    )
    transition = step({TransitionKey.ACTION: action.cpu()})
    added = transition[TransitionKey.COMPLEMENTARY_DATA]
    return {key: value.to(action.device) for key, value in added.items()}


def vocabulary_size(policy: nn.Module) -> int | None:
    """The number of token ids the policy's language model embeds (None: it reads no language)."""
    for module in policy.modules():
        get = getattr(module, "get_input_embeddings", None)
        if not callable(get):
            continue
        try:
            embedding = get()
        except (NotImplementedError, AttributeError):
            continue
        if isinstance(embedding, nn.Embedding):
            return embedding.num_embeddings
    return None


def _feature_steps(
    key: str,
    feature: Any,
    delta_indices: list[int] | None,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    from lerobot.configs.types import FeatureType

    visual = feature.type is FeatureType.VISUAL
    return _steps(key, tuple(feature.shape), delta_indices, batch_size, generator, visual)


def _steps(
    key: str,
    shape: tuple[int, ...],
    delta_indices: list[int] | None,
    batch_size: int,
    generator: torch.Generator,
    visual: bool,
) -> dict[str, torch.Tensor]:
    """One key's values, with a step dimension and a padding mask when it has delta indices."""
    steps = () if delta_indices is None else (len(delta_indices),)
    full = (batch_size, *steps, *shape)
    value = (
        torch.rand(full, generator=generator) if visual else torch.randn(full, generator=generator)
    )
    if delta_indices is None:
        return {key: value}
    return {key: value, f"{key}_is_pad": torch.zeros((batch_size, *steps), dtype=torch.bool)}


def current_observations(batch: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """What select_action receives from a training batch: the latest observation, no targets."""
    # The dataset gives every key with delta indices a step dimension, even a single step.
    has_steps = config.observation_delta_indices is not None
    return {key: batch[key][:, -1] if has_steps else batch[key] for key in config.input_features}


# --- observation queues ----------------------------------------------------------------------

# torch 2.11's dynamo reads the maxlen of a deque it did not create as None, so lerobot's
# populate_queues (`while len(queue) != queue.maxlen: queue.append(...)`) never ends when traced:
# compiling or explaining select_action of diffusion, vqbet or tdmpc hangs. Their explained and
# method-compiled inference is predict_action_chunk, on queues filled by an eager select_action.
QUEUE_TRACE_HANGS = (
    "select_action fills observation queues, and dynamo (torch 2.11) reads a deque's maxlen as "
    "None, so tracing lerobot's populate_queues never ends: graph breaks are explained, and "
    "--compile-how methods compiles, predict_action_chunk on queues an eager select_action filled"
)


def has_observation_queues(policy: nn.Module) -> bool:
    """Does `select_action` keep observation histories in `policy._queues` (diffusion, vqbet...)?

    pi0, pi05 and smolvla keep a `_queues` too, holding only the action queue.
    """
    queues = getattr(policy, "_queues", None)
    return isinstance(queues, dict) and any(key != ACTION_KEY for key in queues)


def queued_observations(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The batch select_action hands predict_action_chunk: one entry per observation queue.

    select_action adds keys of its own (the stacked "observation.images" of diffusion and vqbet,
    tdmpc's "observation.image"), and predict_action_chunk reads the queues of the keys it is
    given: so the keys come from the queues, the values are their latest observations.
    """
    return {key: queue[-1] for key, queue in policy._queues.items() if key != ACTION_KEY and queue}
