"""What is diagnosed: an eager module, how to make its compiled twin, and how to call it.

A `Target` knows nothing of measurement. Probes take a target, make their own copies of its
module (`fresh_copy`, `compiled_copy`), so that eager and compiled never share parameters,
buffers or state such as an action queue, and call them through its entry points.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probes.records.names import DEFAULT_DTYPE, INFERENCE, TRAINING


@dataclass(frozen=True)
class CompileSettings:
    """How the compiled twin is made: the arguments of torch.compile and what it is applied to."""

    mode: str | None = None  # torch.compile mode; None is "default"
    # A backend's name, or a backend object (a what-if's `probes.speed.backends.FreshBackend`)
    backend: str | Callable[..., Any] = "inductor"
    how: str = "model"  # what is compiled; the meaning depends on the target kind
    fullgraph: bool = False
    dynamic: bool | None = None

    def compile_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"backend": self.backend, "fullgraph": self.fullgraph}
        if self.mode not in (None, "default"):
            kwargs["mode"] = self.mode
        if self.dynamic is not None:
            kwargs["dynamic"] = self.dynamic
        return kwargs

    @property
    def backend_name(self) -> str:
        """The backend's name: a backend object names the backend it wraps."""
        if isinstance(self.backend, str):
            return self.backend
        return str(getattr(self.backend, "name", None) or type(self.backend).__name__)

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode or "default",
            "backend": self.backend_name,
            "how": self.how,
            "fullgraph": self.fullgraph,
            "dynamic": self.dynamic,
        }


@dataclass
class OtherBatch:
    """The inference call at another batch size (half the target's), as a user makes it after
    the first: a chance to recompile, and what one dynamic compile must serve too."""

    sizes: tuple[int, int]  # the target's batch size, then this one
    infer: Callable[[nn.Module], Any]  # the call on a copy, without grad


@dataclass
class TargetRecipe:
    """How another process builds the same target: `builder(*args, **kwargs)` returns it.

    `builder` is "package.module:function", importable in a fresh interpreter; the arguments are
    pickled to get there (a model class defined in a script's `__main__` cannot be).
    """

    builder: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    name: str
    kind: str  # "lerobot-policy" or "module"
    module: nn.Module  # the pristine eager original: probes copy it, never run or compile it
    device: torch.device
    # One inference call as users time it, on a given copy; returns the output compared.
    infer: Callable[[nn.Module], torch.Tensor]
    # The training forward on a given copy: returns the scalar loss. None: no training probes.
    loss: Callable[[nn.Module], torch.Tensor] | None
    # Put a copy into its initial serving state (e.g. empty a policy's action queue).
    reset: Callable[[nn.Module], None]
    # Compile a fresh copy of `module` in the way `settings.how` names.
    compile_copy: Callable[[nn.Module, CompileSettings], nn.Module]
    # The functions users call, for explain-style probes: entry point -> (fn, args).
    entry_functions: Callable[[nn.Module], dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]]
    # Ways users call a compiled copy that may recompile it: copy -> [(name, call)].
    recompile_scenarios: Callable[[nn.Module], list[tuple[str, Callable[[], Any]]]] | None = None
    description: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # How a fresh process builds it again (the warm-cache lever); None: it cannot.
    recipe: TargetRecipe | None = None
    # Inference at another batch size; None where the inputs have no batch dimension to halve.
    other_batch: OtherBatch | None = None
    # The floating-point dtype the module and its inputs run in (`probes.targets.dtype`).
    dtype: str = DEFAULT_DTYPE
    # Whether `compile_copy` builds a new module from the one it is given without changing it
    # (a policy's config switch: a twin loaded with its weights), so that no copy is made first:
    # for a billion-parameter policy one copy fewer held at once.
    compiles_without_copy: Callable[[CompileSettings], bool] = lambda _settings: False

    @property
    def entry_points(self) -> list[str]:
        return [INFERENCE] + ([TRAINING] if self.loss is not None else [])

    def fresh_copy(self) -> nn.Module:
        """An eager copy with the target's initial weights and no shared storage."""
        return copy.deepcopy(self.module)

    def compiled_copy(self, settings: CompileSettings) -> nn.Module:
        if self.compiles_without_copy(settings):
            return self.compile_copy(self.module, settings)
        return self.compile_copy(self.fresh_copy(), settings)
