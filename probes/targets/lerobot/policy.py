"""LeRobot policies as diagnosis targets: presets, config overrides, batches, compiled twins.

A policy is built from its config with random weights (`pretrained_backbone_weights=None`), never
from the hub unless the user names a hub id. Batches are synthetic, shaped by the config's input and
output features (already in the normalised range a pre-processor would produce), or real ones from a
local dataset (`probes.targets.lerobot.inputs`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from probes.errors import TargetError, first_line
from probes.records.names import INFERENCE, TRAINING
from probes.targets.lerobot.presets import PolicySpec, Preset, choose_preset, policy_spec
from probes.targets.target import CompileSettings, Target

COMPILE_HOW = ("model", "methods", "wrapper", "config")
DEFAULT_COMPILE_HOW = "model"
_EXTRA_HINT = re.compile(r"pip install '(lerobot\[[\w-]+\])'")


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


REWARD_KEY = "next.reward"  # lerobot's REWARD: the only non-observation key with delta indices
INDEX_KEY = "index"  # every dataset frame has one; tdmpc reads the batch size from it


def synthetic_batch(
    config: Any, batch_size: int, device: torch.device, *, training: bool, seed: int
) -> dict[str, torch.Tensor]:
    """A batch shaped as LeRobot's dataset and pre-processor would give this config.

    Values are in the range a pre-processor produces: states, actions and rewards standard normal
    (as after mean/std normalisation), images uniform in [0, 1]. An inference batch is what
    `select_action` receives: one current observation per feature, `(B, *shape)`. A training
    batch is what `forward` receives: every key the config gives delta indices (observations,
    action, reward) carries that many steps, `(B, steps, *shape)`, and a `<key>_is_pad` mask
    `(B, steps)` (all False: no padding), as the dataset adds them; plus the frame `index`.
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


# --- policies and their compiled twins ---------------------------------------------------------


def build_policy(config: Any) -> nn.Module:
    from lerobot.policies.factory import get_policy_class

    try:
        return get_policy_class(config.type)(config)
    except ImportError as error:  # lerobot checks its optional packages when a policy is built
        raise TargetError(missing_package_line(config.type, error)) from error


def missing_package_line(policy: str, error: ImportError) -> str:
    """One line naming what to install, from lerobot's own hint when it gives one."""
    hint = _EXTRA_HINT.search(str(error))
    extra = hint.group(1) if hint else f"lerobot[{policy}]"
    return f"policy {policy} needs {first_line(error)}; install it with: pip install '{extra}'"


def require_packages(spec: PolicySpec) -> None:
    """Fail before anything is built when the policy's optional packages are missing."""
    missing = spec.missing_packages()
    if missing:
        extra = f"lerobot[{spec.extra or spec.name}]"
        raise TargetError(
            f"policy {spec.name} needs {', '.join(missing)}, not installed; "
            f"install it with: pip install '{extra}'"
        )


def compile_policy_copy(
    policy: nn.Module, settings: CompileSettings, spec: PolicySpec
) -> nn.Module:
    """Compile a (fresh, unshared) copy of a policy the way `settings.how` names."""
    kwargs = settings.compile_kwargs()
    if settings.how == "model":
        for path in spec.parts_compiled_by_model:
            compile_part(policy, path, kwargs)
        return policy
    if settings.how == "methods":
        # As LeRobot's benchmark script does today: compile the bound methods of a copy. Not
        # select_action where it fills observation queues (see QUEUE_TRACE_HANGS).
        inference = "predict_action_chunk" if has_observation_queues(policy) else "select_action"
        setattr(policy, inference, torch.compile(getattr(policy, inference), **kwargs))
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


def compile_part(policy: nn.Module, path: str, kwargs: dict[str, Any]) -> None:
    """Compile the module or method at `path` (e.g. "model", "diffusion.compute_loss") in place."""
    owner_path, _, name = path.rpartition(".")
    owner = policy.get_submodule(owner_path) if owner_path else policy
    part = getattr(owner, name)
    if isinstance(part, nn.Module):
        part.compile(**kwargs)  # the module keeps its class and its state_dict keys
    else:
        # An instance attribute shadows the class's method on this copy only.
        setattr(owner, name, torch.compile(part, **kwargs))


def require_compile_switch(policy: str, config_type: type) -> None:
    """`--compile-how config` needs the config's own switch (`compile_model`)."""
    if "compile_model" not in {f.name for f in dataclasses.fields(config_type)}:
        raise TargetError(
            f"{policy} has no compile switch in its config (compile_model); "
            "use --compile-how model, methods or wrapper"
        )


def _compile_by_config(policy: nn.Module, settings: CompileSettings) -> nn.Module:
    config = policy.config
    require_compile_switch(config.type, type(config))
    twin_config = dataclasses.replace(config, compile_model=True)
    if hasattr(twin_config, "compile_mode") and settings.mode:
        twin_config = dataclasses.replace(twin_config, compile_mode=settings.mode)
    twin = build_policy(twin_config)
    # The config's switch wraps a submodule in torch.compile, whose keys gain "_orig_mod.".
    weights = policy.state_dict()
    twin.load_state_dict({key: weights[key.replace("_orig_mod.", "")] for key in twin.state_dict()})
    return twin.to(next(policy.parameters()).device)


def actions_per_prediction(config: Any) -> int:
    """How many `select_action` calls one chunk prediction serves (the action queue's length)."""
    steps = getattr(config, "n_action_steps", None) or getattr(config, "action_chunk_size", 1)
    return max(steps, getattr(config, "n_action_repeats", 1))


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

    def other_batch_size() -> None:
        compiled.reset()
        compiled.select_action(small_batch)

    scenarios = [("select_action every step, reset per episode", stale_queue)]
    if training_batch is not None:
        scenarios.append(("train then eval", train_then_eval))
    scenarios.append((f"batch size {size} -> {smaller}", other_batch_size))
    return scenarios


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
    """Does `select_action` keep observation histories in `policy._queues` (diffusion, vqbet...)?"""
    return isinstance(getattr(policy, "_queues", None), dict)


def queued_observations(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The batch select_action hands predict_action_chunk: one entry per observation queue.

    select_action adds keys of its own (the stacked "observation.images" of diffusion and vqbet,
    tdmpc's "observation.image"), and predict_action_chunk reads the queues of the keys it is
    given: so the keys come from the queues, the values are their latest observations.
    """
    return {key: queue[-1] for key, queue in policy._queues.items() if key != "action" and queue}


def policy_target(
    name: str,
    policy: nn.Module,
    inference_batch: dict[str, torch.Tensor],
    training_batch: dict[str, torch.Tensor] | None,
    spec: PolicySpec,
    description: dict[str, Any],
    notes: list[str],
    seed: int = 42,
) -> Target:
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

    def recompile_scenarios(compiled: nn.Module) -> list[tuple[str, Callable[[], Any]]]:
        return policy_recompile_scenarios(compiled, inference_batch, training_batch)

    return Target(
        name=name,
        kind="lerobot-policy",
        module=policy,
        device=next(policy.parameters()).device,
        infer=infer,
        loss=loss if training_batch is not None else None,
        reset=reset,
        compile_copy=lambda copy, settings: compile_policy_copy(copy, settings, spec),
        entry_functions=entry_functions,
        recompile_scenarios=recompile_scenarios,
        description=description,
        notes=[*notes, QUEUE_TRACE_HANGS] if queues else notes,
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
    require_packages(spec)
    if not spec.builds_with_random_weights and request.pretrained is None:
        raise TargetError(
            f"policy {spec.name} is diagnosed from a checkpoint only ({spec.needs_pretrained}): "
            f"give --pretrained PATH (a local checkpoint folder)"
        )
    preset = choose_preset(spec, request.preset, request.device)
    batch_size = request.batch_size or preset.batch_size
    if batch_size < 1:
        raise TargetError(f"--batch-size must be at least 1, got {batch_size}")
    notes: list[str] = []
    if (
        request.preset is None
        and request.device.type != "cuda"
        and spec.cpu_preset != spec.cuda_preset
    ):
        notes.append(
            f"no CUDA device: using the CPU preset {preset.name!r} instead of "
            f"{spec.cuda_preset!r} (choose with --preset)"
        )
    if request.compile_how == "config":
        require_compile_switch(spec.name, config_class(spec.name))
    dataset = None
    if request.dataset_root is not None:
        from probes.targets.lerobot.inputs import read_dataset

        dataset = read_dataset(Path(request.dataset_root))
    torch.manual_seed(request.seed)  # the same random initial weights on every run
    config, policy, preprocessor = _config_and_policy(spec, preset, request, dataset)
    policy = policy.to(request.device)
    if dataset is not None:
        from probes.targets.lerobot.inputs import dataset_batch

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
        spec.name, policy, inference_batch, training_batch, spec, description, notes, request.seed
    )
    return target, preset


def _config_and_policy(spec: PolicySpec, preset: Preset, request: PolicyRequest, dataset: Any):
    """The config, the policy and its checkpoint pre-processor (None unless --pretrained).

    A dataset's feature shapes replace the preset's, as `make_policy` does with dataset metadata.
    """
    if request.pretrained is not None:
        from probes.targets.lerobot.inputs import load_pretrained

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
        from probes.targets.lerobot.inputs import apply_dataset_features

        apply_dataset_features(config, dataset)
    return config, build_policy(config), None


def _observations_of(batch: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """What select_action receives: the current observation, without the training targets."""
    # The dataset gives every key with delta indices a step dimension, even a single step.
    has_steps = config.observation_delta_indices is not None
    return {key: batch[key][:, -1] if has_steps else batch[key] for key in config.input_features}


def _config_summary(config: Any) -> dict[str, Any]:
    skip = {"input_features", "output_features", "normalization_mapping"}
    summary = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name not in skip and isinstance(value, (bool, int, float, str, type(None))):
            summary[f.name] = value
    return summary
