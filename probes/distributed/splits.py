"""DDPOptimizer's splits: the graphs dynamo cut at gradient-bucket boundaries, with their sizes.

Under DDP, dynamo hands each captured graph to `DDPOptimizer.compile_fn`, which counts parameter
bytes backwards through the graph, starts a new bucket at `bucket_cap_mb` (the first at DDP's
first-bucket size) and compiles each piece alone, so that a bucket's all-reduce can start while
the rest of the backward runs. A split is not a graph break: dynamo still captured the whole
frame. The buckets are read from the optimizer object after each call (`self.buckets`, which
torch keeps for its tests); the class is patched only while the block runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from probes.records.distributed import DdpSplit


@contextmanager
def recording_splits() -> Iterator[list[DdpSplit]]:
    """Every DDPOptimizer split made while the block runs (graphs kept whole are not listed)."""
    from torch._dynamo.backends.distributed import DDPOptimizer

    splits: list[DdpSplit] = []
    original = DDPOptimizer.compile_fn

    def compile_fn(self: Any, gm: Any, example_inputs: Any) -> Any:
        compiled = original(self, gm, example_inputs)
        buckets = getattr(self, "buckets", None) or []
        if len(buckets) > 1:
            splits.append(
                DdpSplit(
                    bucket_cap_bytes=int(self.bucket_bytes_cap),
                    first_bucket_cap_bytes=int(self.first_bucket_cap),
                    # torch builds them backwards through the graph and keeps them so: the
                    # first of the list runs first in the forward
                    bucket_bytes=[int(bucket.size) for bucket in buckets],
                )
            )
        return compiled

    DDPOptimizer.compile_fn = compile_fn  # type: ignore[method-assign]
    try:
        yield splits
    finally:
        DDPOptimizer.compile_fn = original  # type: ignore[method-assign]
