"""A policy's config: lerobot's config class, `--policy.FIELD=VALUE` overrides, the built config.

A config is built from a preset's shapes and values, then the user's overrides, with random
weights everywhere (`pretrained_backbone_weights=None`): nothing is fetched from the hub. The
policy is then lerobot's own class built from that config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from torch import nn

from probes.errors import TargetError, first_line
from probes.targets.lerobot.packages import extra_required
from probes.targets.lerobot.paligemma import fit_vision_projector
from probes.targets.lerobot.presets import POLICIES, PolicySpec, Preset
from probes.targets.lerobot.random_init import fill_random_weights, initialisation_skipped


def config_class(policy: str) -> type:
    """lerobot's config class registered under the policy's name (e.g. ACTConfig for "act")."""
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
    """The first of the annotation's types (a union's, in order) that reads `text`."""
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
    """The policy's config: the preset's features and values, then the overrides, on `device`."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    cls = config_class(spec.name)
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (preset.state_dim,))}
    if preset.image_shape is not None:
        inputs[preset.camera] = PolicyFeature(FeatureType.VISUAL, preset.image_shape)
    values = {
        "input_features": inputs,
        "output_features": {"action": PolicyFeature(FeatureType.ACTION, (preset.action_dim,))},
        "device": device,
        **local_vlm_values(preset),
        **local_tokenizer_values(preset),
        **preset.config,
        **overrides,
    }
    if "pretrained_backbone_weights" in {f.name for f in dataclasses.fields(cls)}:
        values.setdefault("pretrained_backbone_weights", None)
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise TargetError(f"{spec.name} config rejected: {first_line(error)}") from error


@dataclasses.dataclass
class BuiltPolicy:
    policy: nn.Module
    notes: list[str]  # what the tool changed of lerobot's build, in a sentence each


def local_vlm_values(preset: Preset) -> dict[str, Any]:
    """The config values that point a policy at the vision-language model the tool writes
    locally for the preset (written once into the tool's cache): none for other presets."""
    if preset.local_vlm is None:
        return {}
    from probes.targets.lerobot.local_vlm import LOCAL_VLMS, smolvla_config

    return smolvla_config(LOCAL_VLMS[preset.local_vlm])


def local_tokenizer_values(preset: Preset) -> dict[str, Any]:
    """pi0_fast's tokenizer names pointed at the folders the tool writes (none otherwise)."""
    if not preset.local_tokenizers:
        return {}
    from probes.targets.lerobot.local_vlm import fast_tokenizer_folders

    return fast_tokenizer_folders()


def build_policy(config: Any, *, seed: int | None = 0) -> BuiltPolicy:
    """lerobot's policy class for the config, built from it with random weights.

    A billion-parameter policy (`PolicySpec.fast_random_init`) is built with initialisation
    skipped and then filled once from `seed`; `seed=None` leaves it unfilled, for a twin whose
    weights are loaded next.
    """
    from lerobot.policies.factory import get_policy_class

    spec = POLICIES.get(config.type)
    fast = spec is not None and spec.fast_random_init
    # lerobot checks its optional packages when a policy is built, not when it is imported.
    with extra_required(config.type):
        policy_class = get_policy_class(config.type)
        # lerobot prints progress ("Reducing the number of VLM layers to 4 ...") as it builds
        with (
            initialisation_skipped() if fast else contextlib.nullcontext(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            policy = policy_class(config)
    if fast and seed is not None:
        fill_random_weights(policy, seed)
    projector = fit_vision_projector(policy, seed or 0)
    return BuiltPolicy(policy, [projector] if projector else [])


def config_summary(config: Any) -> dict[str, Any]:
    """The config's plain values (numbers, flags, names), for the diagnosis's description."""
    skip = {"input_features", "output_features", "normalization_mapping"}
    summary = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name not in skip and isinstance(value, (bool, int, float, str, type(None))):
            summary[f.name] = value
    return summary
