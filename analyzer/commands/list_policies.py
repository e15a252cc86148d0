"""`compile-diagnose list`: the LeRobot policies this tool can build, and their presets."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list", help="list the policies compile-diagnose can build, with their presets"
    )
    parser.set_defaults(handler=run_list)


def policy_table() -> Table:
    import lerobot.policies  # noqa: F401  (registers every policy config)
    from lerobot.configs.policies import PreTrainedConfig

    from probes.targets.lerobot.presets import POLICIES

    table = Table(title="LeRobot policies (installed lerobot)", title_justify="left")
    table.add_column("policy")
    table.add_column("presets (CUDA / CPU default)")
    table.add_column("what it needs")
    for name in sorted(PreTrainedConfig.get_known_choices()):
        spec = POLICIES.get(name)
        if spec is None:
            table.add_row(name, "–", "not supported by compile-diagnose yet")
            continue
        presets = ", ".join(spec.presets)
        # Text, not markup: "lerobot[pi]" would read as a style tag
        needs = Text(spec.what_it_needs())
        table.add_row(name, f"{presets} ({spec.cuda_preset} / {spec.cpu_preset})", needs)
    return table


def run_list(args: argparse.Namespace) -> int:
    Console().print(policy_table())
    return 0
