"""`compile-diagnose module FILE.py:FACTORY`: diagnose torch.compile on any nn.Module.

`FACTORY()` returns `(model, inputs)` or `(model, inputs, loss_fn, train_inputs)`, as
`diagnose_module` takes them. The file is loaded by path with its folder importable, so it can
import its neighbours; the run options and the output are those of `compile-diagnose act`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from analyzer.commands.common import add_run_options, diagnose_and_show
from analyzer.commands.gate import requested_gate
from analyzer.errors import UsageError
from probes.errors import error_line
from probes.records.names import DEFAULT_DTYPE

if TYPE_CHECKING:
    from probes.targets.target import Target

SPEC_HELP = (
    "FILE.py:FACTORY, where FACTORY() returns (model, inputs) or "
    "(model, inputs, loss_fn, train_inputs)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from probes.records.target import DEFAULT_MODULE_COMPILE_HOW as DEFAULT_COMPILE_HOW
    from probes.records.target import MODULE_COMPILE_HOW as COMPILE_HOW

    parser = subparsers.add_parser(
        "module",
        help="diagnose torch.compile on any nn.Module a Python file makes",
        description="Diagnose torch.compile on the nn.Module that FACTORY in FILE.py returns, "
        "called with its example inputs (and, given a loss_fn, a training step).",
    )
    parser.add_argument("spec", metavar="FILE.py:FACTORY", help=SPEC_HELP)
    parser.add_argument(
        "--compile-how",
        choices=COMPILE_HOW,
        default=DEFAULT_COMPILE_HOW,
        help="module: torch.compile(model) on a copy; inplace: model.compile() on a copy "
        "(same forward, the model keeps its class) (default: %(default)s)",
    )
    add_run_options(parser)
    parser.set_defaults(handler=run_module)


@dataclass(frozen=True)
class FactoryResult:
    """What the user's factory returned, checked for shape."""

    model: Any
    inputs: Any
    loss_fn: Any = None
    train_inputs: Any = None


def run_module(args: argparse.Namespace) -> int:
    from analyzer.runner.settings import compile_settings, resolve_device
    from analyzer.runner.settings import out_dir as resolve_out_dir
    from probes.errors import TargetError
    from probes.targets.module import ModuleRunDefaults, module_target
    from probes.targets.target import TargetRecipe

    path, factory_name = split_spec(args.spec)
    dtype = args.dtype or DEFAULT_DTYPE
    device = resolve_device(args.device, option="--device")
    settings = compile_settings(
        args.mode, args.backend, args.compile_how, backend_option="--backend"
    )
    # a bad threshold stops before the user's factory runs and the folder is made
    requested_gate(args, comparison=False)
    made = call_factory(path, factory_name)
    out_dir = resolve_out_dir(args.out, f"module-{path.stem}", option="--out")

    def build():
        try:
            target = module_target(
                made.model,
                made.inputs,
                loss_fn=made.loss_fn,
                train_inputs=made.train_inputs,
                device=device,
                seed=args.seed,
                dtype=dtype,
            )
        except TargetError as error:
            raise UsageError(f"{args.spec}: {error}") from None
        # A fresh process calls the factory again: a loss defined inside it does not pickle.
        recipe = (str(path.resolve()), factory_name, str(device), args.seed, dtype)
        target.recipe = TargetRecipe(f"{__name__}:{rebuild_target.__name__}", recipe)
        return target, ModuleRunDefaults()

    # with --nproc the ranks build it again, each in its own process
    args_again = (str(path.resolve()), factory_name, str(device), args.seed, dtype)
    recipe = TargetRecipe(f"{__name__}:{rebuild_target.__name__}", args_again)
    return diagnose_and_show(args, settings, build, out_dir, recipe=recipe)


def rebuild_target(
    path: str, factory_name: str, device: str, seed: int, dtype: str = DEFAULT_DTYPE
) -> Target:
    """The target `compile-diagnose module` built, built again (in another process)."""
    from probes.targets.module import module_target

    made = call_factory(Path(path), factory_name)
    return module_target(
        made.model,
        made.inputs,
        loss_fn=made.loss_fn,
        train_inputs=made.train_inputs,
        device=device,
        seed=seed,
        dtype=dtype,
    )


def split_spec(spec: str) -> tuple[Path, str]:
    file_part, colon, factory = spec.rpartition(":")
    if not colon or not file_part or not factory:
        raise UsageError(f"{spec!r}: give FILE.py:FACTORY, e.g. models.py:make_model")
    path = Path(file_part)
    if not path.is_file():
        raise UsageError(f"{file_part}: no such file")
    if not factory.isidentifier():
        raise UsageError(f"{spec!r}: {factory!r} is not a Python function name")
    return path, factory


def call_factory(path: Path, factory_name: str) -> FactoryResult:
    module = load_file(path)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise UsageError(f"{path} has no function {factory_name!r}")
    try:
        made = factory()
    except Exception as error:
        raise UsageError(f"{path}:{factory_name}() raised {error_line(error)}") from None
    if not isinstance(made, tuple) or len(made) not in (2, 4):
        got = f"a {len(made)}-tuple" if isinstance(made, tuple) else type(made).__name__
        raise UsageError(
            f"{path}:{factory_name}() must return (model, inputs) or "
            f"(model, inputs, loss_fn, train_inputs), not {got}"
        )
    return FactoryResult(*made)


def load_file(path: Path) -> ModuleType:
    """Import a Python file by its path, its folder first on sys.path (for its own imports)."""
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # Never shadow an imported module (a user's copy.py must not replace the standard one).
    name = path.stem if path.stem not in sys.modules else f"compile_diagnose_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # classes defined there must resolve their module (inspect, copy)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise UsageError(f"importing {path} raised {error_line(error)}") from None
    return module
