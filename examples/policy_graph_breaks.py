"""The graph breaks of each LeRobot policy this tool builds, per entry point, by category.

    .venv/bin/python examples/policy_graph_breaks.py [--preset tiny|cpu|reference] [--device cpu]

Runs only the graph-break probe (`torch._dynamo.explain`, no Inductor compile) on each policy
that builds with random weights, under the default `--compile-how model`, and prints one line
per break: entry point, hits, category, place in lerobot's (or diffusers') source. The break
counts do not depend on the preset's sizes, so `tiny` (the default) answers in seconds.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch

from analyzer.runner.diagnose import diagnose
from probes.records.benchmark import BenchmarkSettings
from probes.targets.lerobot.policy import PolicyRequest, build_target
from probes.targets.lerobot.presets import POLICIES
from probes.targets.target import CompileSettings


def site(location: dict | None) -> str:
    if not location:
        return "(no user frame)"
    filename = str(location.get("filename", ""))
    for package in ("lerobot/", "diffusers/", "torch/"):
        if package in filename:
            filename = package + filename.split(package, 1)[1]
            break
    return f"{filename}:{location.get('lineno')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=("tiny", "cpu", "reference"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    settings = BenchmarkSettings(iters_inference=1, iters_training=1, warmup=0)
    for name, spec in POLICIES.items():
        if spec.missing_packages():
            print(f"{name}: skipped ({spec.what_it_needs()})")
            continue
        if args.preset not in spec.presets:  # pi0's smallest size is its cpu preset
            print(f"{name}: skipped (no {args.preset} preset; presets: {', '.join(spec.presets)})")
            continue
        request = PolicyRequest(name, torch.device(args.device), preset=args.preset)
        target, _ = build_target(request)
        diagnosis = diagnose(
            target,
            CompileSettings(),
            settings,
            command=f"graph breaks of {name}",
            out_dir=None,
            probes=frozenset({"graph_breaks"}),
        )
        section = diagnosis.probes["graph_breaks"]
        for entry_point in target.entry_points:
            report = section[entry_point]
            categories = Counter()
            for brk in report["breaks"]:
                categories[brk["category"]] += brk["hits"]
            summary = ", ".join(f"{n} {c}" for c, n in categories.most_common()) or "none"
            print(
                f"{name} {entry_point}: {report['break_count']} breaks at "
                f"{len(report['breaks'])} places, {report['graph_count']} graphs ({summary})"
            )
            for brk in report["breaks"]:
                print(f"    {brk['hits']}x {brk['category']:<22} {site(brk['location'])}")
                print(f"       {brk['reason'].splitlines()[0][:100]}")


if __name__ == "__main__":
    main()
