"""Cudagraph skips: how many compiles Inductor left without CUDA graphs, and why.

Inductor reports a skip through `log_cudagraph_skip_and_bump_counter`
(`torch/_inductor/cudagraph_utils.py`): a warning "skipping cudagraphs due to ..." on the
`cudagraphs` artifact logger, `counters["inductor"]["cudagraph_skips"] += 1`, and the reason in
the compile's metrics (`cudagraph_skip_reason`). Skips on a CPU-only graph bump the counter
without a message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from probes.compile.capture import compiles_during
from probes.logs import messages_logged


@dataclass
class CudagraphSkips:
    count: int = 0
    reasons: list[str] = field(default_factory=list)


@contextmanager
def watch_cudagraph_skips() -> Iterator[CudagraphSkips]:
    """Count cudagraph skips and keep their reasons while the block runs.

    Inductor reports a skip through `log_cudagraph_skip_and_bump_counter`
    (`torch/_inductor/cudagraph_utils.py`): a warning "skipping cudagraphs due to ..." on the
    `cudagraphs` artifact logger, `counters["inductor"]["cudagraph_skips"] += 1`, and the reason
    in the compile's metrics (`cudagraph_skip_reason`). Skips on a CPU-only graph bump the
    counter without a message.
    """
    from torch._dynamo.utils import counters
    from torch._inductor import cudagraph_utils

    skips = CudagraphSkips()
    start = counters["inductor"]["cudagraph_skips"]
    try:
        with (
            compiles_during() as new_compiles,
            messages_logged(cudagraph_utils.cudagraphs_log, logging.WARNING) as messages,
        ):
            yield skips
    finally:
        # Read after the block has exited: only then does `new_compiles` hold its compiles.
        skips.count = counters["inductor"]["cudagraph_skips"] - start
        reasons = [m for m in messages if "skipping cudagraph" in m]
        reasons += [
            m.cudagraph_skip_reason
            for m in new_compiles
            if getattr(m, "cudagraph_skip_reason", None)
        ]
        skips.reasons = list(dict.fromkeys(reasons))
