"""Torch's log messages, kept for a probe to read instead of printed.

Some of what a probe measures is said only in torch's logs: the real reason of a graph break
(dynamo's `graph_breaks` log), why CUDA graphs were skipped (Inductor's `cudagraphs` log).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _MessageList(logging.Handler):
    """Keeps the message of every record it handles, in order."""

    def __init__(self, level: int) -> None:
        super().__init__(level=level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def messages_logged(logger: logging.Logger, level: int) -> Iterator[list[str]]:
    """The messages `logger` hands its handlers at `level` or above while the block runs.

    The logger's own level and propagation are left as they are: a caller that wants messages
    the logger would drop, or wants them off the terminal, sets those around this block.
    """
    handler = _MessageList(level)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
