"""The keys of a target's description (`diagnosis.json` "target") that the analyzer reads.

Both kinds of target (a LeRobot policy, any nn.Module) describe themselves under these keys,
beside keys of their own; renderers show them, and the runner reads the batch size for an
out-of-memory finding.
"""

from __future__ import annotations

POLICY = "policy"  # a LeRobot policy's name; absent for a module
MODULE = "module"  # a module target's class, "package.module.Class"; absent for a policy
PRESET = "preset"
BATCH_SIZE = "batch_size"
BATCH_SOURCE = "batch_source"  # where the inputs come from, in words
WEIGHTS = "weights"  # where the weights come from, in words
PARAMETERS = "parameters"  # parameter count
# The ways a target is compiled (`--compile-how`), for a LeRobot policy and for any module.
POLICY_COMPILE_HOW = ("model", "methods", "wrapper", "config")
DEFAULT_POLICY_COMPILE_HOW = "model"
MODULE_COMPILE_HOW = ("module", "inplace")
DEFAULT_MODULE_COMPILE_HOW = "module"
DTYPE = "dtype"  # the floating-point dtype the model and its inputs were cast to
