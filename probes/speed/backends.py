"""A backend that dynamo compiles for afresh: how a what-if gets a compile of its own.

Dynamo keeps compiled code per code object and reuses an entry for any call whose guards pass
and whose backend compares equal to the entry's (the `BACKEND_MATCH` check in
`torch/_dynamo/guards.py`). A second copy of the same module class, compiled with the same
backend, therefore runs the first copy's code: a what-if that only changed a config would time
the default compile again. A `FreshBackend` compares equal to no other backend object, so a copy
compiled with it gets its own compile, under the config patches it carries, without throwing
away (`torch._dynamo.reset()`) the compiled copies the benchmark still uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


class FreshBackend:
    """`name` ("inductor", "aot_eager", ...) with Inductor config patches applied to its compile."""

    def __init__(self, name: str, config_patches: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.config_patches = dict(config_patches or {})

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        if self.config_patches and self.name != "inductor":
            raise ValueError(
                f"config patches are Inductor settings; backend {self.name} takes none"
            )
        if self.name == "inductor":
            from torch._inductor.compile_fx import compile_fx

            return compile_fx(graph, example_inputs, config_patches=self.config_patches)
        from torch._dynamo.backends.registry import lookup_backend

        return lookup_backend(self.name)(graph, example_inputs)

    def __repr__(self) -> str:
        return f"FreshBackend({self.name!r}, {self.config_patches!r})"


def mode_config(mode: str | None) -> dict[str, Any]:
    """The Inductor config a torch.compile mode stands for (`torch._inductor.list_mode_options`)."""
    if mode in (None, "default"):
        return {}
    from torch._inductor import list_mode_options

    return dict(list_mode_options(mode))
