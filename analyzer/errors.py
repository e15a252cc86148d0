"""Errors that end the command with one line for the user instead of a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a one-line message and exit status 2."""

    exit_code = 2


class InputFileError(UsageError):
    """A file the user named is missing or is not what the command reads."""
