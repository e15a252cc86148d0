"""Ctrl-C that stops a diagnosis even where a library swallows the KeyboardInterrupt.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives: deep
inside dynamo, the profiler or a policy's own code, where a broad `except` may catch it or wrap
it in an ordinary exception. `InterruptWatch` remembers that SIGINT came, so the diagnosis can
stop at the next probe boundary whatever became of the exception, and puts the previous handler
back on exit. Outside the main thread, or where SIGINT is ignored, it changes nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class InterruptWatch:
    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptWatch:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:  # started with SIGINT ignored (nohup, a background job)
            return self
        self._previous = previous
        signal.signal(signal.SIGINT, self._on_sigint)
        self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if callable(self._previous) and self._previous is not signal.default_int_handler:
            self._previous(signum, frame)  # a handler the caller installed has its say first
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise KeyboardInterrupt if SIGINT came, even if its exception was swallowed since."""
        if self.requested:
            raise KeyboardInterrupt
