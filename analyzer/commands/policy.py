"""`compile-diagnose <policy>`: diagnose torch.compile on a LeRobot policy (act, ...)."""

from __future__ import annotations

import argparse

from analyzer.commands.common import add_run_options, diagnose_and_show, positive_int
from analyzer.commands.gate import requested_gate
from analyzer.errors import UsageError

POLICY_OVERRIDE_PREFIX = "--policy."


def register(subparsers: argparse._SubParsersAction) -> None:
    from probes.records.target import POLICY_COMPILE_HOW as COMPILE_HOW
    from probes.targets.lerobot.presets import POLICIES

    for name, spec in POLICIES.items():
        presets = ", ".join(spec.presets)
        parser = subparsers.add_parser(
            name,
            help=f"diagnose torch.compile on LeRobot's {name} policy",
            description=f"Diagnose torch.compile on LeRobot's {name} policy. Presets: {presets} "
            f"({spec.cuda_preset} on CUDA, {spec.cpu_preset} otherwise). Override policy config "
            "fields as --policy.FIELD=VALUE (e.g. --policy.use_vae=true).",
        )
        parser.add_argument("--preset", choices=list(spec.presets), help="shapes and config set")
        parser.add_argument("--batch-size", type=positive_int, help="batch size")
        parser.add_argument(
            "--compile-how",
            choices=COMPILE_HOW,
            help="model: compile the inner network in place of a copy (policy.model.compile()); "
            "methods: compile the bound methods select_action and forward of a copy (LeRobot's "
            "benchmark script today); wrapper: torch.compile(policy) (the script that wrote the "
            "reference report); config: the policy config's own compile switch, in its "
            f"compile_mode (default: {spec.default_compile_how})",
        )
        parser.add_argument("--pretrained", help="local checkpoint folder (or a hub id)")
        parser.add_argument("--dataset-root", help="local LeRobotDataset folder for real batches")
        add_run_options(parser)
        parser.set_defaults(handler=run_policy, policy=name, policy_overrides={})


def split_policy_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Take LeRobot-style `--policy.FIELD=VALUE` (or `--policy.FIELD VALUE`) out of argv."""
    rest: list[str] = []
    overrides: dict[str, str] = {}
    tokens = iter(argv)
    for token in tokens:
        if not token.startswith(POLICY_OVERRIDE_PREFIX):
            rest.append(token)
            continue
        name, sep, value = token[len(POLICY_OVERRIDE_PREFIX) :].partition("=")
        if not sep:
            value = next(tokens, None)
            if value is None:
                raise UsageError(f"{token} needs a value: {token}=VALUE")
        if not name:
            raise UsageError(f"{token}: name a config field, e.g. --policy.use_vae=true")
        overrides[name] = value
    return rest, overrides


def run_policy(args: argparse.Namespace) -> int:
    from analyzer.runner.settings import compile_settings, resolve_device
    from analyzer.runner.settings import out_dir as resolve_out_dir
    from probes.errors import TargetError
    from probes.targets.lerobot.compiled_copy import config_compile_mode
    from probes.targets.lerobot.policy import PolicyRequest, build_target
    from probes.targets.lerobot.presets import choose_preset, policy_spec
    from probes.targets.target import TargetRecipe

    device = resolve_device(args.device, option="--device")
    spec = policy_spec(args.policy)
    try:
        preset = choose_preset(spec, args.preset, device)
        how = args.compile_how or spec.default_compile_how
        mode = args.mode
        if mode is None and how == "config":
            mode = config_compile_mode(spec, preset, args.policy_overrides)
    except TargetError as error:
        raise UsageError(str(error)) from None
    settings = compile_settings(
        mode, args.backend or preset.backend, how, backend_option="--backend"
    )
    requested_gate(args, comparison=False)  # a bad threshold stops before the folder is made
    out_dir = resolve_out_dir(args.out, args.policy, option="--out")
    request = PolicyRequest(
        policy=args.policy,
        device=device,
        preset=args.preset,
        batch_size=args.batch_size,
        overrides=dict(args.policy_overrides),
        pretrained=args.pretrained,
        dataset_root=args.dataset_root,
        seed=args.seed,
        compile_how=how,
        dtype=args.dtype,
    )

    def build():
        try:
            return build_target(request)
        except TargetError as error:
            raise UsageError(str(error)) from None

    # with --nproc the ranks build it again, each in its own process
    recipe = TargetRecipe("probes.targets.lerobot.policy:rebuild_target", (request,))
    return diagnose_and_show(args, settings, build, out_dir, recipe=recipe)
