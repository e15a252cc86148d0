"""What every rank of a distributed diagnosis measures, handed to the ranks as one pickle.

The launcher (`analyzer.runner.distributed`) writes it to `<out>/ranks/request.pkl`; each rank's
worker (`python -m probes.distributed.worker`) reads it and builds the target again from its
recipe (`Target.recipe`), as the fresh-process levers do.
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from probes.records.benchmark import BenchmarkSettings
from probes.records.distributed import (
    ACCELERATE_VARIABLE,
    DEFAULT_TIMEOUT_S,
    LAUNCHED_BY_ACCELERATE,
    LAUNCHED_BY_TORCHRUN,
    LOCAL_RANK_VARIABLE,
    RANK_VARIABLE,
    RANKS_DIR,
    REQUEST_FILE,
    RUN_ID_VARIABLE,
    UNSET_RUN_ID,
    WORLD_SIZE_VARIABLE,
    DdpSettings,
)
from probes.targets.target import CompileSettings, Target, TargetRecipe


@dataclass(frozen=True)
class DistributedRequest:
    recipe: TargetRecipe
    compile_settings: CompileSettings
    ddp: DdpSettings
    benchmark: BenchmarkSettings
    out_dir: str
    device: str = "cpu"  # "cuda": each rank on the GPU of its local rank
    timeout_s: float = DEFAULT_TIMEOUT_S
    launcher: str = LAUNCHED_BY_TORCHRUN

    def save(self) -> Path:
        path = Path(self.out_dir) / RANKS_DIR / REQUEST_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self))
        return path

    @staticmethod
    def load(path: Path) -> DistributedRequest:
        request = pickle.loads(Path(path).read_bytes())
        if not isinstance(request, DistributedRequest):
            raise TypeError(f"{path} does not hold a distributed request")
        return request


@dataclass(frozen=True)
class RankEnvironment:
    """This process's place in the launch, as torchrun or `accelerate launch` set it."""

    rank: int
    world_size: int
    local_rank: int
    launcher: str


def rank_environment(environ: Mapping[str, str] = os.environ) -> RankEnvironment | None:
    """The launch this process is a rank of; None when no launcher started it."""
    if RANK_VARIABLE not in environ or WORLD_SIZE_VARIABLE not in environ:
        return None
    launcher = LAUNCHED_BY_ACCELERATE if ACCELERATE_VARIABLE in environ else LAUNCHED_BY_TORCHRUN
    return RankEnvironment(
        rank=int(environ[RANK_VARIABLE]),
        world_size=int(environ[WORLD_SIZE_VARIABLE]),
        local_rank=int(environ.get(LOCAL_RANK_VARIABLE, environ[RANK_VARIABLE])),
        launcher=launcher,
    )


def launch_name(environ: Mapping[str, str] = os.environ) -> str | None:
    """A name every rank of this launch on this machine shares, for a default output folder;
    None when no launcher started this process.

    torchrun's run id where it is one of its own (a uuid under --standalone), else the launcher's
    process (torchrun's agent is every local rank's parent): a timestamp would differ between
    ranks that start a second apart, and rank 0 would wait for files in a folder no rank writes.
    """
    if rank_environment(environ) is None:
        return None
    run_id = environ.get(RUN_ID_VARIABLE, UNSET_RUN_ID)
    if run_id != UNSET_RUN_ID:
        return f"run-{run_id[:8]}"
    return f"launcher-{os.getppid()}"


def build_from_recipe(recipe: TargetRecipe) -> Target:
    module_name, _, function = recipe.builder.partition(":")
    builder = getattr(importlib.import_module(module_name), function)
    return builder(*recipe.args, **recipe.kwargs)
