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


def one_line(error: BaseException, limit: int = 300) -> str:
    """The error's whole message on one line, or its type when the message is empty.

    For a library's error quoted inside one of ours (lerobot's, the hub's): its later lines often
    say what is wrong, so they are kept, joined by single spaces, and cut at `limit` characters
    (ending in "...") so that the message stays one readable line.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
