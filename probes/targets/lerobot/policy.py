"""A LeRobot policy as a diagnosis target: what the user asked for, built into a `Target`.

`build_target` reads top-down: the policy's spec and preset (`presets`), its config with the
user's overrides (`config`) or a checkpoint's (`checkpoint`), the policy with random weights
seeded the same on every run, its batches (synthetic, `batches`, or from a local dataset,
`dataset`), then `policy_target`: how a copy is called, reset, compiled (`compiled_copy`) and
called again in ways that may recompile it. Nothing is fetched from the hub unless the user
names a hub id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from probes.errors import TargetError
from probes.records import target as description_keys
from probes.records.compile import batch_size_scenario
from probes.records.names import DEFAULT_DTYPE, DEFAULT_SEED, INFERENCE, TRAINING
from probes.targets.dtype import cast_inputs, check_runs_in_dtype, torch_dtype
from probes.targets.lerobot.batches import (
    ACTION_KEY,
    ACTION_TOKENS_KEY,
    LANGUAGE_TOKENS_KEY,
    PROMPT_TOKENS,
    QUEUE_TRACE_HANGS,
    current_observations,
    fast_action_tokens,
    has_observation_queues,
    language_inputs,
    queued_observations,
    synthetic_batch,
    vocabulary_size,
)
from probes.targets.lerobot.checkpoint import load_pretrained
from probes.targets.lerobot.compiled_copy import compile_policy_copy, require_compile_switch
from probes.targets.lerobot.config import (
    build_config,
    build_policy,
    config_class,
    config_summary,
    parse_overrides,
)
from probes.targets.lerobot.dataset import (
    DatasetInputs,
    apply_dataset_features,
    dataset_batch,
    read_dataset,
)
from probes.targets.lerobot.packages import require_packages
from probes.targets.lerobot.presets import PolicySpec, Preset, choose_preset, policy_spec
from probes.targets.target import CompileSettings, OtherBatch, Target, TargetRecipe

CONFIG_DTYPES = ("float32", "bfloat16")  # what pi0's, pi05's and pi0_fast's configs accept


@dataclass(frozen=True)
class PolicyRequest:
    """What the user asked to diagnose, before anything is built."""

    policy: str
    device: torch.device
    preset: str | None = None
    batch_size: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    pretrained: str | None = None
    dataset_root: str | None = None
    seed: int = DEFAULT_SEED
    compile_how: str | None = None  # None: the policy's default (`PolicySpec.default_compile_how`)
    # The floating-point dtype: the policy and its batches are cast to it, or for a policy with a
    # precision of its own (`PolicySpec.config_dtype`) its config's `dtype`. None: the preset's.
    dtype: str | None = None


@dataclass
class _Batches:
    """The batches a target calls its copies with, and where they came from (in the report)."""

    inference: dict[str, torch.Tensor]
    training: dict[str, torch.Tensor]
    source: str

    def add_language(
        self, config: Any, policy: nn.Module, batch_size: int, request: PolicyRequest
    ) -> None:
        """Token ids and mask for a language-conditioned policy, where the batches lack them."""
        length = getattr(config, "tokenizer_max_length", None)
        vocabulary = vocabulary_size(policy)
        if length is None or vocabulary is None or LANGUAGE_TOKENS_KEY in self.inference:
            return
        language = language_inputs(
            batch_size, length, vocabulary, request.device, seed=request.seed
        )
        self.inference.update(language)
        self.training.update(language)
        self.source += (
            f"; language: {PROMPT_TOKENS} random token ids padded to {length} (no tokenizer)"
        )

    def add_action_tokens(self, config: Any, policy: nn.Module) -> None:
        """pi0_fast's training targets, its actions as tokens, where the batch lacks them."""
        if ACTION_TOKENS_KEY in self.training:
            return
        action_tokens = fast_action_tokens(config, policy, self.training[ACTION_KEY])
        if action_tokens:
            self.training.update(action_tokens)
            self.source += "; actions tokenized by lerobot's FAST step (local tokenizers)"


def build_target(request: PolicyRequest) -> tuple[Target, Preset]:
    """The target the request describes, and the preset it was built with."""
    spec = policy_spec(request.policy)
    require_packages(spec)
    preset = choose_preset(spec, request.preset, request.device)
    batch_size = request.batch_size or preset.batch_size
    if batch_size < 1:
        raise TargetError(f"--batch-size must be at least 1, got {batch_size}")
    notes = _preset_notes(spec, preset, request)
    if compile_how_of(request) == "config":
        require_compile_switch(spec.name, config_class(spec.name))
    dataset = None if request.dataset_root is None else read_dataset(Path(request.dataset_root))
    torch.manual_seed(request.seed)  # the same random initial weights on every run
    config, policy, preprocessor, build_notes = _config_and_policy(spec, preset, request, dataset)
    notes.extend(build_notes)
    dtype = dtype_of(spec, config, request)
    cast = DEFAULT_DTYPE if spec.config_dtype else dtype  # such a policy casts for itself
    if spec.config_dtype:
        policy = policy.to(device=request.device)  # its dtypes are its config's mix
    else:
        policy = policy.to(device=request.device, dtype=torch_dtype(cast))
    batches = _batches(config, batch_size, request, dataset, preprocessor)
    batches.add_language(config, policy, batch_size, request)
    batches.add_action_tokens(config, policy)
    batches.inference = cast_inputs(batches.inference, cast)
    batches.training = cast_inputs(batches.training, cast)
    description = {
        description_keys.POLICY: spec.name,
        description_keys.PRESET: preset.name,
        "preset_description": preset.description,
        description_keys.WEIGHTS: request.pretrained or "random (pretrained_backbone_weights=None)",
        description_keys.BATCH_SIZE: batch_size,
        description_keys.BATCH_SOURCE: batches.source,
        description_keys.PARAMETERS: sum(p.numel() for p in policy.parameters()),
        description_keys.DTYPE: dtype,
        "input_features": {k: list(v.shape) for k, v in config.input_features.items()},
        "output_features": {k: list(v.shape) for k, v in config.output_features.items()},
        "config": config_summary(config),
    }
    target = policy_target(
        spec.name,
        policy,
        batches.inference,
        batches.training,
        spec,
        description,
        notes,
        request.seed,
    )
    target.recipe = TargetRecipe(f"{__name__}:{rebuild_target.__name__}", (request,))
    target.dtype = dtype
    if not spec.config_dtype:
        check_runs_in_dtype(target, spec.name)
    return target, preset


def compile_how_of(request: PolicyRequest) -> str:
    """How the request's policy is compiled: as asked, else the policy's default."""
    return request.compile_how or policy_spec(request.policy).default_compile_how


def dtype_of(spec: PolicySpec, config: Any, request: PolicyRequest) -> str:
    """The dtype the policy runs in: its config's own for a policy with one, else as asked."""
    if spec.config_dtype:
        return str(config.dtype)
    return request.dtype or DEFAULT_DTYPE


def rebuild_target(request: PolicyRequest) -> Target:
    """The target of `request` built again (in another process: `Target.recipe`)."""
    return build_target(request)[0]


def _preset_notes(spec: PolicySpec, preset: Preset, request: PolicyRequest) -> list[str]:
    """A note when the preset was chosen for the user because there is no CUDA device."""
    if (
        request.preset is None
        and request.device.type != "cuda"
        and spec.cpu_preset != spec.cuda_preset
    ):
        return [
            f"no CUDA device: using the CPU preset {preset.name!r} instead of "
            f"{spec.cuda_preset!r} (choose with --preset)"
        ]
    return []


def _config_and_policy(
    spec: PolicySpec, preset: Preset, request: PolicyRequest, dataset: DatasetInputs | None
) -> tuple[Any, nn.Module, Any, list[str]]:
    """The config, the policy, its checkpoint pre-processor (None unless --pretrained) and the
    notes on what the tool changed of lerobot's build.

    A dataset's feature shapes replace the preset's, as `make_policy` does with dataset metadata.
    """
    if request.pretrained is not None:
        policy, config, preprocessor = load_pretrained(
            request.pretrained, str(request.device), allow_hub=True
        )
        if config.type != spec.name:
            raise TargetError(
                f"{request.pretrained} holds a {config.type!r} policy, not {spec.name!r}: "
                f"run compile-diagnose {config.type} --pretrained {request.pretrained}"
            )
        if request.overrides:
            raise TargetError("--policy.FIELD overrides do not apply to a --pretrained policy")
        return config, policy, preprocessor, []
    overrides = parse_overrides(config_class(spec.name), request.overrides)
    if spec.config_dtype and request.dtype is not None:
        overrides["dtype"] = config_dtype(spec, request.dtype)
    config = build_config(spec, preset, overrides, str(request.device))
    if dataset is not None:
        apply_dataset_features(config, dataset)
    built = build_policy(config, seed=request.seed)
    return config, built.policy, None, built.notes


def config_dtype(spec: PolicySpec, dtype: str) -> str:
    """--dtype as the value of the config's own `dtype` field, which takes these two."""
    if dtype not in CONFIG_DTYPES:
        raise TargetError(
            f"{spec.name} runs in the dtype its config names, one of {', '.join(CONFIG_DTYPES)}: "
            f"not {dtype}"
        )
    return dtype


def _batches(
    config: Any,
    batch_size: int,
    request: PolicyRequest,
    dataset: DatasetInputs | None,
    preprocessor: Any,
) -> _Batches:
    """The dataset's first frames when one is given, else synthetic batches of the same shapes."""
    if dataset is not None:
        training = dataset_batch(
            dataset, config, batch_size, str(request.device), preprocessor=preprocessor
        )
        return _Batches(
            inference=current_observations(training, config),
            training=training,
            source=f"local dataset {dataset.root} (normalised by the policy's pre-processor)",
        )

    def synthetic(training: bool) -> dict[str, torch.Tensor]:
        return synthetic_batch(
            config, batch_size, request.device, training=training, seed=request.seed
        )

    return _Batches(
        inference=synthetic(training=False),
        training=synthetic(training=True),
        source="synthetic, shaped by the config's features (normalised range)",
    )


# --- the target ------------------------------------------------------------------------------


def policy_target(
    name: str,
    policy: nn.Module,
    inference_batch: dict[str, torch.Tensor],
    training_batch: dict[str, torch.Tensor] | None,
    spec: PolicySpec,
    description: dict[str, Any],
    notes: list[str],
    seed: int = DEFAULT_SEED,
) -> Target:
    """How the probes call, reset and compile copies of `policy` on these batches."""
    queues = has_observation_queues(policy)

    def infer(copy: nn.Module) -> torch.Tensor:
        # As the reference script timed it: a reset, then select_action predicts a whole chunk;
        # in eval mode, as lerobot-eval runs a policy (the training probes leave it training).
        # Seeded, because diffusion, vqbet and tdmpc draw random numbers at inference: eager and
        # compiled are compared on the same draws, and their difference is the compiler's.
        copy.eval()
        copy.reset()
        torch.manual_seed(seed)
        return copy.select_action(inference_batch)

    def reset(copy: nn.Module) -> None:
        """The initial serving state: empty queues, or observation queues filled by one call."""
        copy.reset()
        if queues:
            with torch.no_grad():
                copy.select_action(inference_batch)

    def loss(copy: nn.Module) -> torch.Tensor:
        return copy.forward(training_batch)[0]

    def entry_functions(copy: nn.Module) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
        reset(copy)
        if queues:
            entries = {INFERENCE: (copy.predict_action_chunk, (queued_observations(copy),))}
        else:
            entries = {INFERENCE: (copy.select_action, (inference_batch,))}
        if training_batch is not None:
            entries[TRAINING] = (copy.forward, (training_batch,))
        return entries

    def compile_copy(copy: nn.Module, settings: CompileSettings) -> nn.Module:
        return compile_policy_copy(copy, settings, spec)

    other_batch = _other_batch(inference_batch)

    def recompile_scenarios(compiled: nn.Module) -> list[tuple[str, Callable[[], Any]]]:
        return policy_recompile_scenarios(compiled, training_batch, inference_batch, other_batch)

    return Target(
        name=name,
        kind="lerobot-policy",
        module=policy,
        device=next(policy.parameters()).device,
        infer=infer,
        loss=loss if training_batch is not None else None,
        reset=reset,
        compile_copy=compile_copy,
        entry_functions=entry_functions,
        recompile_scenarios=recompile_scenarios,
        description=description,
        notes=[*notes, QUEUE_TRACE_HANGS] if queues else notes,
        other_batch=other_batch,
        # the config switch builds a twin and loads the weights: `policy` is only read
        compiles_without_copy=lambda settings: settings.how == "config",
    )


def _other_batch(inference_batch: dict[str, Any]) -> OtherBatch:
    """`select_action` after a reset on the first half of the batch (at least one row), in
    whichever mode the copy is (a user's rollout after training calls it so)."""
    size = next(v.shape[0] for v in inference_batch.values() if isinstance(v, torch.Tensor))
    smaller = max(1, size // 2)
    small_batch = {
        k: v[:smaller] if isinstance(v, torch.Tensor) else v for k, v in inference_batch.items()
    }

    def infer(copy: nn.Module) -> Any:
        copy.reset()
        with torch.no_grad():
            return copy.select_action(small_batch)

    return OtherBatch((size, smaller), infer)


def actions_per_prediction(config: Any) -> int:
    """How many `select_action` calls one chunk prediction serves (the action queue's length)."""
    steps = getattr(config, "n_action_steps", None) or getattr(config, "action_chunk_size", 1)
    return max(steps, getattr(config, "n_action_repeats", 1))


def policy_recompile_scenarios(
    compiled: nn.Module,
    training_batch: dict[str, Any] | None,
    inference_batch: dict[str, Any],
    other_batch: OtherBatch,
) -> list[tuple[str, Callable[[], Any]]]:
    """How a policy is used after its first compiled call, each a chance to recompile."""
    steps = actions_per_prediction(compiled.config)

    def stale_queue() -> None:
        # A rollout calls select_action every step and resets only between episodes.
        compiled.reset()
        for _ in range(steps + 1):
            compiled.select_action(inference_batch)

    def train_then_eval() -> None:
        compiled.train()
        compiled.forward(training_batch)
        compiled.reset()
        compiled.select_action(inference_batch)

    scenarios = [("select_action every step, reset per episode", stale_queue)]
    if training_batch is not None:
        scenarios.append(("train then eval", train_then_eval))
    scenarios.append((batch_size_scenario(*other_batch.sizes), lambda: other_batch.infer(compiled)))
    return scenarios
