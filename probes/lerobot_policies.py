"""LeRobot policies as diagnosis targets: presets, config overrides, batches, compiled twins.

A policy is built from its config with random weights (`pretrained_backbone_weights=None`), never
from the hub unless the user names a hub id. Batches are synthetic, shaped by the config's input and
output features (already in the normalised range a pre-processor would produce), or real ones from a
local dataset (`probes.lerobot_inputs`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from probes.errors import TargetError, first_line
from probes.policy_presets import PolicySpec, Preset, choose_preset, policy_spec
from probes.target import INFERENCE, TRAINING, CompileSettings, Target

COMPILE_HOW = ("model", "methods", "wrapper", "config")
DEFAULT_COMPILE_HOW = "model"


# --- configs -------------------------------------------------------------------------------


def config_class(policy: str) -> type:
    import lerobot.policies  # noqa: F401  (importing it registers every policy config)
    from lerobot.configs.policies import PreTrainedConfig

    try:
        return PreTrainedConfig.get_choice_class(policy)
    except Exception as error:  # draccus raises its own KeyError-like types
        raise TargetError(f"lerobot has no policy config {policy!r}") from error


def parse_overrides(config_cls: type, items: Mapping[str, str]) -> dict[str, Any]:
    """`--policy.FIELD=VALUE` strings converted by the config field's declared type."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    parsed: dict[str, Any] = {}
    for name, text in items.items():
        if name not in fields:
            raise TargetError(
                f"{config_cls.__name__} has no field {name!r} (from --policy.{name}); "
                f"fields: {', '.join(sorted(fields))}"
            )
        parsed[name] = _convert(text, hints.get(name, str), name)
    return parsed


def _convert(text: str, annotation: Any, name: str) -> Any:
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if type(None) in options and text.lower() in ("none", "null"):
        return None
    for option in (o for o in options if o is not type(None)):
        try:
            return _convert_one(text, option)
        except (ValueError, TypeError, json.JSONDecodeError):
            continue
    raise TargetError(f"--policy.{name}={text}: not a valid {annotation}")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _convert_one(text: str, option: Any) -> Any:
    if option is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if option in (int, float, str):
        return option(text)
    return json.loads(text)  # lists, dicts, tuples given as JSON


def build_config(spec: PolicySpec, preset: Preset, overrides: Mapping[str, Any], device: str):
    from lerobot.configs.types import FeatureType, PolicyFeature

    cls = config_class(spec.name)
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (preset.state_dim,))}
    if preset.image_shape is not None:
        inputs[preset.camera] = PolicyFeature(FeatureType.VISUAL, preset.image_shape)
    values = {
        "input_features": inputs,
        "output_features": {"action": PolicyFeature(FeatureType.ACTION, (preset.action_dim,))},
        "device": device,
        **preset.config,
        **overrides,
    }
    if "pretrained_backbone_weights" in {f.name for f in dataclasses.fields(cls)}:
        values.setdefault("pretrained_backbone_weights", None)
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise TargetError(f"{spec.name} config rejected: {first_line(error)}") from error


# --- batches -------------------------------------------------------------------------------


def synthetic_batch(
    config: Any, batch_size: int, device: torch.device, *, training: bool, seed: int
) -> dict[str, torch.Tensor]:
    """A batch shaped by the config's features, in the range a pre-processor produces.

    States and actions are standard normal (as after mean/std normalisation); images uniform in
    [0, 1]. Training batches carry the observation history, the action chunk and its padding mask
    that LeRobot's dataset would add for this config's delta indices.
    """
    from lerobot.configs.types import FeatureType

    generator = torch.Generator().manual_seed(seed)
    obs_steps = len(config.observation_delta_indices or []) if training else 0
    batch: dict[str, torch.Tensor] = {}
    for key, feature in config.input_features.items():
        shape = (
            (batch_size, obs_steps, *feature.shape)
            if obs_steps > 1
            else (batch_size, *feature.shape)
        )
        if feature.type is FeatureType.VISUAL:
            batch[key] = torch.rand(shape, generator=generator)
        else:
            batch[key] = torch.randn(shape, generator=generator)
    if training:
        horizon = len(config.action_delta_indices or [0])
        for key, feature in config.output_features.items():
            batch[key] = torch.randn((batch_size, horizon, *feature.shape), generator=generator)
            batch[f"{key}_is_pad"] = torch.zeros((batch_size, horizon), dtype=torch.bool)
    return {key: value.to(device) for key, value in batch.items()}


# --- policies and their compiled twins ---------------------------------------------------------


def build_policy(config: Any) -> nn.Module:
    from lerobot.policies.factory import get_policy_class

    try:
        policy_cls = get_policy_class(config.type)
    except ImportError as error:
        raise TargetError(
            f"policy {config.type!r} needs a package that is not installed ({first_line(error)}); "
            f"try: pip install 'lerobot[{config.type}]'"
        ) from error
    return policy_cls(config)


def compile_policy_copy(
    policy: nn.Module, settings: CompileSettings, spec: PolicySpec
) -> nn.Module:
    """Compile a (fresh, unshared) copy of a policy the way `settings.how` names."""
    kwargs = settings.compile_kwargs()
    if settings.how == "model":
        getattr(policy, spec.inner_module).compile(**kwargs)
        return policy
    if settings.how == "methods":
        # As LeRobot's benchmark script does today: compile the bound methods of a copy.
        policy.select_action = torch.compile(policy.select_action, **kwargs)
        policy.forward = torch.compile(policy.forward, **kwargs)
        return policy
    if settings.how == "wrapper":
        # As the script that wrote the reference report did: the wrapper compiles `forward` only;
        # `select_action` reaches the eager method through `__getattr__`.
        return torch.compile(policy, **kwargs)
    if settings.how == "config":
        return _compile_by_config(policy, settings)
    raise TargetError(
        f"unknown --compile-how {settings.how!r}; choose from {', '.join(COMPILE_HOW)}"
    )


def _compile_by_config(policy: nn.Module, settings: CompileSettings) -> nn.Module:
    config = policy.config
    if not hasattr(config, "compile_model"):
        raise TargetError(
            f"{config.type} has no compile switch in its config (compile_model); "
            "use --compile-how model, methods or wrapper"
        )
    twin_config = dataclasses.replace(config, compile_model=True)
    if hasattr(twin_config, "compile_mode") and settings.mode:
        twin_config = dataclasses.replace(twin_config, compile_mode=settings.mode)
    twin = build_policy(twin_config)
    twin.load_state_dict(policy.state_dict())
    return twin.to(next(policy.parameters()).device)


def policy_recompile_scenarios(
    compiled: nn.Module,
    inference_batch: dict[str, Any],
    training_batch: dict[str, Any] | None,
) -> list[tuple[str, Callable[[], Any]]]:
    """How a policy is used after its first compiled call, each a chance to recompile."""
    size = next(v.shape[0] for v in inference_batch.values() if isinstance(v, torch.Tensor))
    smaller = max(1, size // 2)
    small_batch = {
        k: v[:smaller] if isinstance(v, torch.Tensor) else v for k, v in inference_batch.items()
    }
    steps = getattr(compiled.config, "n_action_steps", 1)

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

    def other_batch_size() -> None:
        compiled.reset()
        compiled.select_action(small_batch)

    scenarios = [("select_action every step, reset per episode", stale_queue)]
    if training_batch is not None:
        scenarios.append(("train then eval", train_then_eval))
    scenarios.append((f"batch size {size} -> {smaller}", other_batch_size))
    return scenarios


def reset_policy(policy: nn.Module) -> None:
    policy.reset()


def policy_target(
    name: str,
    policy: nn.Module,
    inference_batch: dict[str, torch.Tensor],
    training_batch: dict[str, torch.Tensor] | None,
    spec: PolicySpec,
    description: dict[str, Any],
    notes: list[str],
) -> Target:
    def infer(copy: nn.Module) -> torch.Tensor:
        # As the reference script timed it: a reset, then select_action predicts a whole chunk.
        copy.reset()
        return copy.select_action(inference_batch)

    def loss(copy: nn.Module) -> torch.Tensor:
        return copy.forward(training_batch)[0]

    def entry_functions(copy: nn.Module) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
        copy.reset()
        entries = {INFERENCE: (copy.select_action, (inference_batch,))}
        if training_batch is not None:
            entries[TRAINING] = (copy.forward, (training_batch,))
        return entries

    def recompile_scenarios(compiled: nn.Module) -> list[tuple[str, Callable[[], Any]]]:
        return policy_recompile_scenarios(compiled, inference_batch, training_batch)

    return Target(
        name=name,
        kind="lerobot-policy",
        module=policy,
        device=next(policy.parameters()).device,
        infer=infer,
        loss=loss if training_batch is not None else None,
        reset=reset_policy,
        compile_copy=lambda copy, settings: compile_policy_copy(copy, settings, spec),
        entry_functions=entry_functions,
        recompile_scenarios=recompile_scenarios,
        description=description,
        notes=notes,
    )


# --- the target -----------------------------------------------------------------------------


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
    seed: int = 42
    compile_how: str = DEFAULT_COMPILE_HOW


def build_target(request: PolicyRequest) -> tuple[Target, Preset]:
    spec = policy_spec(request.policy)
    preset = choose_preset(spec, request.preset, request.device)
    batch_size = request.batch_size or preset.batch_size
    if batch_size < 1:
        raise TargetError(f"--batch-size must be at least 1, got {batch_size}")
    notes: list[str] = []
    if request.preset is None and request.device.type != "cuda":
        notes.append(
            f"no CUDA device: using the CPU preset {preset.name!r} instead of "
            f"{spec.cuda_preset!r} (choose with --preset)"
        )
    if request.compile_how == "config" and "compile_model" not in {
        f.name for f in dataclasses.fields(config_class(spec.name))
    }:
        raise TargetError(
            f"{spec.name} has no compile switch in its config (compile_model); "
            "use --compile-how model, methods or wrapper"
        )
    dataset = None
    if request.dataset_root is not None:
        from probes.lerobot_inputs import read_dataset

        dataset = read_dataset(Path(request.dataset_root))
    torch.manual_seed(request.seed)  # the same random initial weights on every run
    config, policy, preprocessor = _config_and_policy(spec, preset, request, dataset)
    policy = policy.to(request.device)
    if dataset is not None:
        from probes.lerobot_inputs import dataset_batch

        training_batch = dataset_batch(
            dataset, config, batch_size, str(request.device), preprocessor=preprocessor
        )
        inference_batch = _observations_of(training_batch, config)
        batch_source = f"local dataset {dataset.root} (normalised by the policy's pre-processor)"
    else:
        make = synthetic_batch
        training_batch = make(config, batch_size, request.device, training=True, seed=request.seed)
        inference_batch = make(
            config, batch_size, request.device, training=False, seed=request.seed
        )
        batch_source = "synthetic, shaped by the config's features (normalised range)"
    description = {
        "policy": spec.name,
        "preset": preset.name,
        "preset_description": preset.description,
        "weights": request.pretrained or "random (pretrained_backbone_weights=None)",
        "batch_size": batch_size,
        "batch_source": batch_source,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "input_features": {k: list(v.shape) for k, v in config.input_features.items()},
        "output_features": {k: list(v.shape) for k, v in config.output_features.items()},
        "config": _config_summary(config),
    }
    target = policy_target(
        spec.name, policy, inference_batch, training_batch, spec, description, notes
    )
    return target, preset


def _config_and_policy(spec: PolicySpec, preset: Preset, request: PolicyRequest, dataset: Any):
    """The config, the policy and its checkpoint pre-processor (None unless --pretrained).

    A dataset's feature shapes replace the preset's, as `make_policy` does with dataset metadata.
    """
    if request.pretrained is not None:
        from probes.lerobot_inputs import load_pretrained

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
        return config, policy, preprocessor
    overrides = parse_overrides(config_class(spec.name), request.overrides)
    config = build_config(spec, preset, overrides, str(request.device))
    if dataset is not None:
        from probes.lerobot_inputs import apply_dataset_features

        apply_dataset_features(config, dataset)
    return config, build_policy(config), None


def _observations_of(batch: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """What select_action receives: the current observation, without the training targets."""
    observations = {}
    for key in config.input_features:
        value = batch[key]
        history = len(config.observation_delta_indices or [])
        observations[key] = value[:, -1] if history > 1 else value
    return observations


def _config_summary(config: Any) -> dict[str, Any]:
    skip = {"input_features", "output_features", "normalization_mapping"}
    summary = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name not in skip and isinstance(value, (bool, int, float, str, type(None))):
            summary[f.name] = value
    return summary
