"""`compile-diagnose list`: the LeRobot policies this tool can build, and their presets."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from analyzer.render.policies import PolicyRow, policy_list_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list", help="list the policies compile-diagnose can build, with their presets"
    )
    parser.set_defaults(handler=run_list)


def policy_table() -> Table:
    """The installed lerobot's policies, with the presets this tool has for each."""
    import lerobot.policies  # noqa: F401  (registers every policy config)
    from lerobot.configs.policies import PreTrainedConfig

    from probes.targets.lerobot.presets import POLICIES

    rows = []
    for name in sorted(PreTrainedConfig.get_known_choices()):
        spec = POLICIES.get(name)
        if spec is None:
            rows.append(PolicyRow(name))
            continue
        rows.append(
            PolicyRow(name, spec.presets, spec.cuda_preset, spec.cpu_preset, spec.what_it_needs())
        )
    return policy_list_table(rows)


def run_list(args: argparse.Namespace) -> int:
    Console().print(policy_table())
    return 0
