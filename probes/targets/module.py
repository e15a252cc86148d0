"""Any `nn.Module` as a diagnosis target: a model, its example inputs and, for training, a loss.

`inputs` is what the model is called with: a tuple of positional arguments or a dict of keyword
arguments (a lone tensor counts as a 1-tuple). Inference is `model.eval()` and one call under
`torch.no_grad()`; its output, every tensor in it flattened into one, is what eager and compiled
are compared on. Training exists only with a `loss_fn(output) -> scalar tensor`: one call on
`train_inputs` (the inference inputs when not given) and the loss of its output.

The target keeps its own deep copy of the model, moved to the device: the caller's model is never
moved, compiled or run by the probes.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from probes.errors import TargetError, error_line
from probes.records import target as description_keys
from probes.records.compile import batch_size_scenario
from probes.records.names import DEFAULT_DTYPE, DEFAULT_SEED, INFERENCE, TRAINING
from probes.targets.dtype import cast_inputs, torch_dtype
from probes.targets.target import CompileSettings, OtherBatch, Target, TargetRecipe

# module: torch.compile(model), the wrapper most code writes; inplace: model.compile(), which
# compiles the same forward but leaves the model its own class and state_dict keys.
COMPILE_HOW = description_keys.MODULE_COMPILE_HOW
DEFAULT_COMPILE_HOW = description_keys.DEFAULT_MODULE_COMPILE_HOW

ModuleInputs = tuple[Any, ...] | dict[str, Any]
LossFn = Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class ModuleRunDefaults:
    """Iteration counts for a module diagnosis when the caller names none."""

    iters_inference: int = 20
    iters_training: int = 10
    warmup: int = 3


@dataclass(frozen=True)
class _Call:
    """How the model is called: positional arguments or keyword arguments."""

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] | None = None

    def __call__(self, model: nn.Module) -> Any:
        return model(*self.args, **(self.kwargs or {}))

    def leading_size(self) -> int | None:
        first = next(iter(_tensors(self.args or dict(self.kwargs or {}))), None)
        return first.shape[0] if first is not None and first.dim() > 0 else None

    def sliced(self, size: int, count: int) -> _Call:
        """The same call on the first `count` rows of every tensor whose leading size is `size`."""

        def cut(value: Any) -> Any:
            is_batched = isinstance(value, torch.Tensor) and value.dim() > 0
            return value[:count] if is_batched and value.shape[0] == size else value

        return _Call(tree_map(cut, self.args), tree_map(cut, dict(self.kwargs or {})) or None)

    def describe(self) -> Any:
        if self.kwargs is not None:
            return {key: _describe_value(value) for key, value in self.kwargs.items()}
        return [_describe_value(value) for value in self.args]


def module_target(
    model: nn.Module,
    inputs: ModuleInputs | torch.Tensor,
    *,
    loss_fn: LossFn | None = None,
    train_inputs: ModuleInputs | torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    name: str | None = None,
    seed: int = DEFAULT_SEED,
    dtype: str = DEFAULT_DTYPE,
) -> Target:
    """A target for `model` called with `inputs`; with `loss_fn`, a training entry point too.

    `dtype`: the floating-point dtype the model and the floating-point tensors of its inputs are
    cast to (`probes.targets.dtype`).

    Raises `TargetError` (one line) when the arguments do not fit together: not a module, inputs
    of another type, `train_inputs` without `loss_fn`, a model that fails on its inputs, or a
    loss that is not a scalar tensor.
    """
    if not isinstance(model, nn.Module):
        raise TargetError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    if train_inputs is not None and loss_fn is None:
        raise TargetError("train_inputs needs a loss_fn: without one there is no training step")
    if loss_fn is not None and not callable(loss_fn):
        raise TargetError(f"loss_fn must be callable (output -> scalar tensor), not {loss_fn!r}")
    device = _device(device)
    # the caller's model stays where it was, in its own dtype
    module = copy.deepcopy(model).to(device=device, dtype=torch_dtype(dtype))
    inference = _as_call(cast_inputs(inputs, dtype), "inputs", device)
    training = None
    if loss_fn is not None:
        given = inputs if train_inputs is None else train_inputs
        training = _as_call(cast_inputs(given, dtype), "train_inputs", device)
    _check_calls(module, inference, training, loss_fn)
    name = name or type(model).__name__
    target = _target(name, module, device, inference, training, loss_fn, seed)
    target.dtype = dtype
    target.description[description_keys.DTYPE] = dtype
    target.recipe = TargetRecipe(
        f"{__name__}:{module_target.__name__}",
        (model, inputs),
        {
            "loss_fn": loss_fn,
            "train_inputs": train_inputs,
            "device": str(device),
            "name": name,
            "seed": seed,
            "dtype": dtype,
        },
    )
    return target


def _target(
    name: str,
    module: nn.Module,
    device: torch.device,
    inference: _Call,
    training: _Call | None,
    loss_fn: LossFn | None,
    seed: int,
) -> Target:
    def infer(copy_: nn.Module) -> torch.Tensor:
        copy_.eval()
        torch.manual_seed(seed)  # a model that samples compares on the same draws both sides
        with torch.no_grad():
            return output_tensor(inference(copy_))

    def loss(copy_: nn.Module) -> torch.Tensor:
        return loss_fn(training(copy_))

    def entry_functions(copy_: nn.Module) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
        entries = {INFERENCE: (_named(lambda: inference(copy_), f"{name}.forward"), ())}
        if training is not None:
            entries[TRAINING] = (_named(lambda: loss(copy_), f"loss_fn({name}.forward)"), ())
        return entries

    other_batch = _other_batch(inference)

    def recompile_scenarios(compiled: nn.Module) -> list[tuple[str, Callable[[], Any]]]:
        return module_recompile_scenarios(compiled, inference, training, infer, other_batch)

    return Target(
        name=name,
        kind="module",
        module=module,
        device=device,
        infer=infer,
        loss=loss if training is not None else None,
        reset=lambda _copy: None,  # a module has no state between calls that a user resets
        compile_copy=compile_module_copy,
        entry_functions=entry_functions,
        recompile_scenarios=recompile_scenarios,
        description=_description(module, device, inference, training, loss_fn),
        notes=[] if training is not None else [TRAINING_SKIPPED_NOTE],
        other_batch=other_batch,
    )


TRAINING_SKIPPED_NOTE = (
    "no loss_fn: the training probes were skipped (training graph breaks, training correctness "
    "and timing); pass loss_fn (and train_inputs) to diagnose a training step"
)


def compile_module_copy(module: nn.Module, settings: CompileSettings) -> nn.Module:
    """Compile a fresh copy of the module the way `settings.how` names."""
    kwargs = settings.compile_kwargs()
    if settings.how == "module":
        return torch.compile(module, **kwargs)
    if settings.how == "inplace":
        module.compile(**kwargs)
        return module
    raise TargetError(
        f"unknown compile-how {settings.how!r} for a module; choose from {', '.join(COMPILE_HOW)}"
    )


def module_recompile_scenarios(
    compiled: nn.Module,
    inference: _Call,
    training: _Call | None,
    infer: Callable[[nn.Module], torch.Tensor],
    other_batch: OtherBatch | None,
) -> list[tuple[str, Callable[[], Any]]]:
    """How a compiled model is commonly called after its first call, each a chance to recompile."""

    def with_grad() -> None:
        compiled.eval()
        inference(compiled)  # e.g. a validation pass inside a training loop

    def train_then_eval() -> None:
        compiled.train()
        (training or inference)(compiled)
        infer(compiled)

    scenarios = [
        ("called with grad enabled (first calls ran under no_grad)", with_grad),
        ("train then eval", train_then_eval),
    ]
    if other_batch is not None:
        scenarios.append(
            (batch_size_scenario(*other_batch.sizes), lambda: other_batch.infer(compiled))
        )
    return scenarios


def _other_batch(inference: _Call) -> OtherBatch | None:
    """The call on the first half of every batched input, in eval mode, without grad."""
    size = inference.leading_size()
    if size is None or size < 2:
        return None
    smaller = inference.sliced(size, size // 2)

    def infer(copy: nn.Module) -> Any:
        copy.eval()
        with torch.no_grad():
            return smaller(copy)

    return OtherBatch((size, size // 2), infer)


def output_tensor(output: Any) -> torch.Tensor:
    """Every tensor of an output (a tensor, tuple, dict, ...) flattened into one, for comparison."""
    tensors = _tensors(output)
    if not tensors:
        raise TargetError(f"the model's output holds no tensor ({type(output).__name__})")
    return torch.cat([t.detach().reshape(-1).to(torch.float32) for t in tensors])


# --- checks and descriptions ---------------------------------------------------------------


def _device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise TargetError(f"device {device!r}: not a device (use cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TargetError(f"device {device!r}: CUDA is not available on this machine")
    return resolved


def _as_call(inputs: Any, what: str, device: torch.device) -> _Call:
    def to_device(value: Any) -> Any:
        return value.to(device) if isinstance(value, torch.Tensor) else value

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    if isinstance(inputs, Mapping):
        if not all(isinstance(key, str) for key in inputs):
            raise TargetError(f"{what}: a dict of keyword arguments needs string keys")
        return _Call(kwargs=tree_map(to_device, dict(inputs)))
    if isinstance(inputs, Sequence) and not isinstance(inputs, str):
        return _Call(args=tuple(tree_map(to_device, list(inputs))))
    raise TargetError(
        f"{what} must be a tuple of positional arguments or a dict of keyword arguments, "
        f"not {type(inputs).__name__}"
    )


def _check_calls(
    module: nn.Module, inference: _Call, training: _Call | None, loss_fn: LossFn | None
) -> None:
    """Call the model once per entry point on a throwaway copy: bad inputs fail here, in a line."""
    trial = copy.deepcopy(module)
    trial.eval()
    try:
        with torch.no_grad():
            output_tensor(inference(trial))
    except TargetError:
        raise
    except Exception as error:
        raise TargetError(f"the model fails on its inputs: {error_line(error)}") from error
    if training is None:
        return
    trial.train()
    try:
        loss = loss_fn(training(trial))
    except Exception as error:
        raise TargetError(f"the training step fails: {error_line(error)}") from error
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise TargetError(f"loss_fn must return a scalar tensor, it returned {shape}")
    if not loss.requires_grad:
        raise TargetError("loss_fn's tensor does not require grad: nothing to train")


def _description(
    module: nn.Module,
    device: torch.device,
    inference: _Call,
    training: _Call | None,
    loss_fn: LossFn | None,
) -> dict[str, Any]:
    cls = type(module)
    return {
        description_keys.MODULE: f"{cls.__module__}.{cls.__qualname__}",
        "defined_in": _source_file(cls),
        description_keys.PARAMETERS: sum(p.numel() for p in module.parameters()),
        "device": str(device),
        "inputs": inference.describe(),
        "train_inputs": training.describe() if training is not None else None,
        "loss_fn": getattr(loss_fn, "__qualname__", repr(loss_fn)) if loss_fn else None,
        description_keys.BATCH_SIZE: inference.leading_size(),
        description_keys.BATCH_SOURCE: f"the caller's example inputs {inference.describe()}",
        description_keys.WEIGHTS: f"the caller's {cls.__qualname__} (a deep copy)",
    }


def _source_file(cls: type) -> str | None:
    try:
        return inspect.getsourcefile(cls)
    except TypeError:  # built-in or defined interactively
        return None


def _describe_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe_value(v) for k, v in value.items()}
    return type(value).__name__


def _tensors(value: Any) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(value)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def _named(fn: Callable[..., Any], qualname: str) -> Callable[..., Any]:
    """Give an entry-point closure the name a user knows it by (reports name the function)."""
    fn.__name__ = fn.__qualname__ = qualname
    return fn
