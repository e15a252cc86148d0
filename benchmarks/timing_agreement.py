"""Do the probe's timing harness and torch.utils.benchmark agree on the same copies?

One process, one eager and one compiled copy of a LeRobot policy (ACT's CPU preset by default),
compiled and first called exactly as the benchmark probe does. Then the same inference call of
each copy is timed three ways, one after the other:

1. the probe's harness (`probes.timing.measure_interleaved`: warm-up, eager and compiled
   round-robin, median and quartiles), as the diagnosis times it;
2. `torch.utils.benchmark.Timer(...).blocked_autorange()` with `num_threads` set to the threads
   torch uses here (the diagnosis runs with them all);
3. the same Timer with its default `num_threads=1`: Timer runs single-threaded unless told
   otherwise, which is not how the model runs in the user's process.

Prints each harness's medians, spreads and eager/compiled ratio with the range the spreads allow.
The first two should agree within that range; the third measures something else. The probe's
round also times a third copy compiled with `layout_optimization=False` (the
`no-layout-optimization` what-if): on this CPU Inductor's channels-last convolutions are what
make the compiled call's time (and so the ratio) move between runs and between processes. With
`--background-load`, a last round runs beside another process that keeps one core busy (as a
second test run or a build would): on 2 cores this moves the ratio by more than any harness does.

    .venv/bin/python benchmarks/timing_agreement.py [--policy act] [--preset cpu]
                                                    [--backend inductor] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.utils.benchmark as torch_benchmark

from probes.benchmark import BenchmarkProbe
from probes.records.benchmark import BenchmarkSettings
from probes.records.divergence import Fp64Criterion
from probes.records.names import INFERENCE
from probes.records.speed import NO_LAYOUT_OPTIMIZATION
from probes.records.timing import Measurement, Speedup
from probes.speed.what_ifs import WhatIfRun, what_if_change
from probes.targets.lerobot.policy import PolicyRequest, build_target
from probes.targets.target import CompileSettings
from probes.timing import measure_interleaved


def timer_measurement(
    label: str, call: Callable[[], Any], threads: int, min_run_time: float
) -> Measurement:
    """blocked_autorange's per-block times (each a mean over its block), as a Measurement."""
    timer = torch_benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    measured = timer.blocked_autorange(min_run_time=min_run_time)
    return Measurement(label, [t * 1e3 for t in measured.times], 0, "cpu")


BUSY_LOOP = (
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "a = torch.randn(512, 512)\n"
    "while True:\n"
    "    a = (a @ a).tanh()\n"
)


@contextlib.contextmanager
def background_load(on: bool) -> Iterator[None]:
    """Another process keeping one core busy while the block runs."""
    if not on:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        yield
    finally:
        process.kill()
        process.wait()


def line(name: str, eager: Measurement, compiled: Measurement) -> str:
    speedup = Speedup(eager, compiled)
    return (
        f"{name:<44} eager {eager.median_ms:7.2f} ms "
        f"(IQR {eager.iqr_ms:5.2f}, n={len(eager.samples_ms):3d})"
        f"  compiled {compiled.median_ms:7.2f} ms (IQR {compiled.iqr_ms:5.2f})"
        f"  ratio {speedup.ratio:.2f}x [{speedup.low:.2f}-{speedup.high:.2f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="act")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--min-run-time", type=float, default=3.0, help="seconds per Timer side")
    parser.add_argument("--rounds", type=int, default=2, help="how often to repeat all three")
    parser.add_argument(
        "--background-load",
        action="store_true",
        help="one more round beside a process that keeps one core busy",
    )
    args = parser.parse_args()

    target, preset = build_target(
        PolicyRequest(args.policy, torch.device("cpu"), preset=args.preset)
    )
    settings = BenchmarkSettings(preset.iters_inference, preset.iters_training, preset.warmup)
    probe = BenchmarkProbe(target, CompileSettings(backend=args.backend), settings)
    probe.run()  # compiles and first-calls as the diagnosis does, then its own timing
    eager, compiled = probe.eager, probe.compiled
    assert eager is not None and compiled is not None
    no_layout = what_if_change(NO_LAYOUT_OPTIMIZATION, CompileSettings(), settings.learning_rate)
    eager_layout = WhatIfRun(target, no_layout, INFERENCE, settings, Fp64Criterion())
    eager_layout_call = eager_layout.call_of(target.compiled_copy(no_layout.settings))
    eager_layout_call()  # its compile

    def eager_call():
        with torch.no_grad():
            return target.infer(eager)

    def compiled_call():
        with torch.no_grad():
            return target.infer(compiled)

    threads = torch.get_num_threads()
    print(
        f"{args.policy} preset {args.preset}, backend {args.backend}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, torch threads {threads}"
    )
    timed = probe.result.timings["inference"]
    print(
        f"{'diagnosis benchmark (same process, earlier)':<44} eager "
        f"{timed.eager['median_ms']:7.2f} ms  compiled {timed.compiled['median_ms']:7.2f} ms  "
        f"ratio {timed.speedup['ratio']:.2f}x [{timed.speedup['low']:.2f}-"
        f"{timed.speedup['high']:.2f}]"
    )
    ratios: dict[str, list[float]] = {}
    rounds = [False] * args.rounds + ([True] if args.background_load else [])
    for round_index, loaded in enumerate(rounds):
        busy = " (another process busy on one core)" if loaded else ""
        print(f"-- round {round_index + 1}{busy}")
        with background_load(loaded):
            rows = time_round(
                eager_call, compiled_call, eager_layout_call, settings, threads, args.min_run_time
            )
        for name, (e, c) in rows.items():
            label = name + (" +load" if loaded else "")
            print(line(label, e, c))
            ratios.setdefault(label, []).append(Speedup(e, c).ratio)
    print("-- median ratio over rounds")
    for name, values in ratios.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:<44} {statistics.median(values):.2f}x  ({each})")


def time_round(
    eager_call: Callable[[], Any],
    compiled_call: Callable[[], Any],
    eager_layout_call: Callable[[], Any],
    settings: BenchmarkSettings,
    threads: int,
    min_run_time: float,
) -> dict[str, tuple[Measurement, Measurement]]:
    """The same two calls timed by the probe's harness and by Timer, with two thread counts."""
    measured = measure_interleaved(
        {"eager": eager_call, "compiled": compiled_call, "eager layout": eager_layout_call},
        iters=max(settings.iters_inference, 30),
        warmup=settings.warmup,
        device="cpu",
    )
    rows = {
        "probe harness (interleaved)": (measured["eager"], measured["compiled"]),
        "  same run, layout_optimization=False": (measured["eager"], measured["eager layout"]),
    }
    for count, label in ((threads, f"{threads} threads"), (1, "1 thread (default)")):
        rows[f"torch.utils.benchmark.Timer, {label}"] = (
            timer_measurement("eager", eager_call, count, min_run_time),
            timer_measurement("compiled", compiled_call, count, min_run_time),
        )
    return rows


if __name__ == "__main__":
    main()
