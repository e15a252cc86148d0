"""Errors a probe or target raises when what the user asked for cannot be built or read.

The CLI turns a `TargetError` into one line and exit status 2, like a usage error: it means the
input (a policy name, a checkpoint folder, a dataset, a device) is wrong, not that a probe failed.
"""

from __future__ import annotations


class TargetError(Exception):
    """The target cannot be built as asked; the message is one line the user can act on."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
