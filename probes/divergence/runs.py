"""One run of an entry point on one copy, the outputs it yields, and the settings it runs under.

A training run is a forward and a backward from a given seed: the outputs are the loss and every
parameter's gradient ("grad:<parameter>"). An inference run is the target's inference call in
eval mode (for a policy, `reset()` then `select_action`): the output is the action. Every run
seeds the global generators first, so two sides draw the same numbers wherever they draw them
with torch's generator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
import torch._dynamo
from torch import nn

from probes.divergence.dropout import dropout_disabled
from probes.divergence.fp64_reference import run_float64
from probes.divergence.tf32 import tf32
from probes.records.divergence import (
    ACTION,
    DROPOUT_OFF,
    FALLBACK_RANDOM,
    GRAD_PREFIX,
    LOSS,
    DropoutSites,
)
from probes.records.names import INFERENCE
from probes.targets.target import CompileSettings, Target

Outputs = dict[str, torch.Tensor]
COMPILED_WRAPPER_PREFIX = "_orig_mod."  # torch.compile(module) nests the original here
# Each what-if that takes random numbers out, as the `what_if` switches it turns on (recorded
# under the scenario's "settings"): Inductor draws with eager's generator, or no dropout draws.
WHAT_IF_SWITCHES: dict[str, dict[str, bool]] = {
    FALLBACK_RANDOM: {"fallback_random": True},
    DROPOUT_OFF: {"dropout_off": True},
}
# Every switch off: the settings of a scenario run as is.
SWITCHES_OFF = {name: False for switches in WHAT_IF_SWITCHES.values() for name in switches}
# Every switch on: every random number out, so that what differs is arithmetic alone.
RANDOM_NUMBERS_OUT = {name: True for name in SWITCHES_OFF}


def parameter_name(name: str) -> str:
    """A parameter's or module's path as in the eager module, whatever wrapper compiled it."""
    name = name.replace(COMPILED_WRAPPER_PREFIX, "")
    return "" if name == COMPILED_WRAPPER_PREFIX.rstrip(".") else name


def training_outputs(target: Target, module: nn.Module, seed: int) -> Outputs:
    if target.loss is None:
        raise ValueError(f"{target.name} has no training entry point")
    module.train()
    module.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = target.loss(module)
    loss.backward()
    outputs: Outputs = {LOSS: loss.detach()}
    for name, parameter in module.named_parameters():
        if parameter.grad is not None:
            outputs[GRAD_PREFIX + parameter_name(name)] = parameter.grad.detach().clone()
    module.zero_grad(set_to_none=True)
    return outputs


def inference_outputs(target: Target, module: nn.Module, seed: int) -> Outputs:
    module.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        return {ACTION: target.infer(module).detach().clone()}


def run_entry(target: Target, entry_point: str) -> Callable[[nn.Module, int], Outputs]:
    if entry_point == INFERENCE:
        return lambda module, seed: inference_outputs(target, module, seed)
    return lambda module, seed: training_outputs(target, module, seed)


def run_entry_float64(target: Target, entry_point: str, module: nn.Module, seed: int) -> Outputs:
    run = run_entry(target, entry_point)
    return run_float64(lambda: run(module, seed))


@contextmanager
def what_if(
    *modules: nn.Module,
    fallback_random: bool = False,
    dropout_off: bool = False,
    tf32_enabled: bool | None = None,
) -> Iterator[DropoutSites | None]:
    """Settings of one what-if run, on every copy it names; all restored on exit.

    Inductor reads `fallback_random` and TF32 when it compiles: the compiled copy must make its
    first call inside this context, after `torch._dynamo.reset()` (see `compile_fresh`).
    """
    import torch._inductor.config as inductor_config

    with ExitStack() as stack:
        if fallback_random:
            stack.enter_context(inductor_config.patch(fallback_random=True))
        if tf32_enabled is not None:
            stack.enter_context(tf32(tf32_enabled))
        sites = stack.enter_context(dropout_disabled(*modules)) if dropout_off else None
        yield sites


def _call_through(call_impl: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return call_impl(*args, **kwargs)


def compile_alone(module: nn.Module, settings: CompileSettings) -> None:
    """Compile `module` in place, as `module.compile()` does, but reachable for any module.

    `nn.Module.compile` compiles the module's `_call_impl`, a frame of torch's own file: dynamo
    does not trace a top-level frame of torch.nn, so a built-in module compiled alone (an
    `nn.Linear`, an `nn.ReLU`) compiles nothing and runs eager. Here the compiled frame is this
    file's `_call_through`, which dynamo traces, inlining the module's call as it would inside a
    model. Later calls of `module` go through it, as after `module.compile()`.
    """
    compiled = torch.compile(_call_through, **settings.compile_kwargs())
    module._compiled_call_impl = functools.partial(compiled, module._call_impl)


def compile_fresh(target: Target, settings: CompileSettings) -> nn.Module:
    """A compiled copy that really compiles on its first call, under the settings then in force.

    Dynamo caches compiled code per code object, and a new copy of the same module class can
    reuse code compiled earlier (under another inductor config) when its guards still pass. So
    this throws every compiled function away first (`torch._dynamo.reset()`): copies compiled
    before recompile on their next call.
    """
    torch._dynamo.reset()
    return target.compiled_copy(settings)
