"""The keys of a target's description (`diagnosis.json` "target") that the analyzer reads.

Both kinds of target (a LeRobot policy, any nn.Module) describe themselves under these keys,
beside keys of their own; renderers show them, and the runner reads the batch size for an
out-of-memory finding.
"""

from __future__ import annotations

POLICY = "policy"  # a LeRobot policy's name; absent for a module
PRESET = "preset"
BATCH_SIZE = "batch_size"
BATCH_SOURCE = "batch_source"  # where the inputs come from, in words
WEIGHTS = "weights"  # where the weights come from, in words
PARAMETERS = "parameters"  # parameter count
DTYPE = "dtype"  # the floating-point dtype the model and its inputs were cast to
