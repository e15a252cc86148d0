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


def error_line(error: BaseException) -> str:
    """The error's type and the first line of its message: `ValueError: bad shape`."""
    return f"{type(error).__name__}: {first_line(error)}"


def compile_error_line(error: BaseException) -> str:
    """One line for a compiler error, naming the innermost cause.

    torch wraps a backend's exception (`BackendCompilerFailed: backend='x' raised:`), whose first
    line says nothing; the cause's first line is what a user can act on.
    """
    inner = getattr(error, "inner_exception", None) or error.__cause__
    line = error_line(error)
    if inner is not None and inner is not error:
        line += f" {error_line(inner)}"
    return line
