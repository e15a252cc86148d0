"""A policy's compiled twin, made in one of the four ways `--compile-how` names.

- model: the network where the policy calls it (its forward, or the methods the policy calls),
  compiled in place: the policy keeps its class, its state_dict keys and its Python-side logic;
- methods: the policy's own entry points, as LeRobot's benchmark script compiles them;
- wrapper: `torch.compile(policy)`, as the script that wrote the reference report did;
- config: the policy's own switch (`compile_model=True`), on a twin loaded with the same weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from probes.errors import TargetError
from probes.records.target import DEFAULT_POLICY_COMPILE_HOW, POLICY_COMPILE_HOW
from probes.targets.lerobot.batches import has_observation_queues
from probes.targets.lerobot.config import build_policy, config_class
from probes.targets.lerobot.presets import PolicySpec, Preset
from probes.targets.target import CompileSettings

COMPILE_HOW = POLICY_COMPILE_HOW
DEFAULT_COMPILE_HOW = DEFAULT_POLICY_COMPILE_HOW
INDUCTOR = "inductor"  # the backend a config's compile switch uses (torch.compile's default)
COMPILED_ORIGINAL = "_torchdynamo_orig_callable"  # what torch.compile's wrapper of a function wraps


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
        # select_action where it fills observation queues (see batches.QUEUE_TRACE_HANGS).
        inference = "predict_action_chunk" if has_observation_queues(policy) else "select_action"
        setattr(policy, inference, torch.compile(getattr(policy, inference), **kwargs))
        policy.forward = torch.compile(policy.forward, **kwargs)
        return policy
    if settings.how == "wrapper":
        # The wrapper compiles `forward` only; `select_action` reaches the eager method through
        # `__getattr__`.
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


def config_compile_mode(spec: PolicySpec, preset: Preset, overrides: dict[str, str]) -> str | None:
    """The `compile_mode` the policy's config switch compiles in: the override, the preset's, or
    the config class's default (None where the config has no such field)."""
    if "compile_mode" in overrides:
        return overrides["compile_mode"]
    if "compile_mode" in preset.config:
        return preset.config["compile_mode"]
    fields = {f.name: f for f in dataclasses.fields(config_class(spec.name))}
    field = fields.get("compile_mode")
    return None if field is None else field.default


def require_compile_switch(policy: str, config_type: type) -> None:
    """`--compile-how config` needs the config's own switch (`compile_model`)."""
    if "compile_model" not in {f.name for f in dataclasses.fields(config_type)}:
        raise TargetError(
            f"{policy} has no compile switch in its config (compile_model); "
            "use --compile-how model, methods or wrapper"
        )


def _compile_by_config(policy: nn.Module, settings: CompileSettings) -> nn.Module:
    """A twin built with the config's `compile_model` switch on, loaded with `policy`'s weights.

    The switch decides what is compiled (pi0 and smolvla: their model's `sample_actions` and
    `forward`) in the config's `compile_mode`, with Inductor. When the diagnosis asks for another
    backend or mode (`settings`), each part the switch compiled is compiled again from its
    original with them. pi0's switch also sets the float32 matmul precision to "high" for the
    whole process: the setting is given back after the build, so that eager copies are not
    changed by building a compiled one.
    """
    config = policy.config
    require_compile_switch(config.type, type(config))
    twin_config = dataclasses.replace(config, compile_model=True)
    if hasattr(twin_config, "compile_mode") and settings.mode:
        twin_config = dataclasses.replace(twin_config, compile_mode=settings.mode)
    precision = torch.get_float32_matmul_precision()
    try:
        twin = build_policy(twin_config, seed=None).policy  # its weights are loaded next
    finally:
        torch.set_float32_matmul_precision(precision)
    # The config's switch wraps a submodule in torch.compile, whose keys gain "_orig_mod.".
    weights = policy.state_dict()
    twin.load_state_dict({key: weights[key.replace("_orig_mod.", "")] for key in twin.state_dict()})
    if settings.backend_name != INDUCTOR:
        recompile_switched_parts(twin, settings.compile_kwargs())
    return twin.to(next(policy.parameters()).device)


def recompile_switched_parts(twin: nn.Module, kwargs: dict[str, Any]) -> list[str]:
    """Compile again, with `kwargs`, each method the config's switch replaced by its compiled
    self (an instance attribute holding torch.compile's wrapper); returns their paths."""
    recompiled = []
    for path, module in twin.named_modules():
        for name, value in list(vars(module).items()):
            original = getattr(value, COMPILED_ORIGINAL, None)
            if original is not None and callable(value):
                setattr(module, name, torch.compile(original, **kwargs))
                recompiled.append(f"{path}.{name}" if path else name)
    return recompiled
