"""Read a large Kineto trace a piece at a time, decoding only the fields the analysis needs.

A trace is one JSON object whose `traceEvents` array holds every event; a user's trace of a few
steps is often hundreds of MB. Here the file (gzipped or not) is read in chunks of
`CHUNK_BYTES`; each run of whole events is cut off at an event boundary and decoded by msgspec
straight into `TraceEvent`s (`trace_events`), so neither the file's text nor a dict per event is
ever held whole: memory grows with the complete events kept, not with the file.

An event boundary is a `}` followed by `,` and `{` (whitespace allowed). One inside an event
(a list of objects in its args, or in a string) cannot cut a run that decodes, so a run that
fails to decode is first given the next chunk. What this reader does not take (a file that is
not JSON, keys or values of types a trace does not have, an event with no phase or a phase
outside the format, a second failure in a row) raises `NotStreamable`, and the caller reads the
file the general way, which says what is wrong with it.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from probes.kernels.trace_events import (
    AnyEvent,
    KinetoTrace,
    TraceEvent,
    TraceFormatError,
    TraceHead,
    device_names,
)

CHUNK_BYTES = 8 * 2**20
GZIP_MAGIC = b"\x1f\x8b"
# How far into the file the events must start (past `deviceProperties` and the like).
MAX_HEAD_BYTES = 64 * 2**20

_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_AFTER_EVENT = re.compile(rb"\s*,\s*\{")
_EMPTY_EVENTS = b'"traceEvents": []}'


class NotStreamable(Exception):
    """The file is outside what the typed reader takes: read it the general way."""


_events_decoder = msgspec.json.Decoder(list[AnyEvent])
_head_decoder = msgspec.json.Decoder(TraceHead)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def read_streamed(path: Path) -> KinetoTrace:
    """The trace at `path`, read chunk by chunk; NotStreamable if it is not a typical trace."""
    with _opened(path) as chunks:
        reader = _EventRuns()
        head = _read_head(chunks, reader)
        for chunk in chunks:
            reader.feed(chunk)
        tail = reader.finish()
    names = tail.deviceProperties if tail.deviceProperties is not msgspec.UNSET else None
    return KinetoTrace(
        path=path,
        events=reader.events,
        device_names=device_names(head.deviceProperties if names is None else names),
        other_event_count=reader.other_count,
    )


@contextmanager
def _opened(path: Path) -> Iterator[Iterator[bytes]]:
    """The file's bytes in chunks, gunzipped when the file is gzip whatever its name says."""
    try:
        with path.open("rb") as file:
            packed = file.read(len(GZIP_MAGIC)) == GZIP_MAGIC
            file.seek(0)
            if packed:
                with gzip.GzipFile(fileobj=file) as unpacked:
                    yield _gunzipped_chunks(unpacked, path)
            else:
                yield _chunks(file)
    except OSError as error:
        raise TraceFormatError(f"cannot read {path}: {error.strerror or error}") from error


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    while chunk := file.read(CHUNK_BYTES):
        yield chunk


def _gunzipped_chunks(file: gzip.GzipFile, path: Path) -> Iterator[bytes]:
    try:
        yield from _chunks(file)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise TraceFormatError(f"{path} is not a readable gzip file: {error}") from error


def _read_head(chunks: Iterator[bytes], reader: _EventRuns) -> TraceHead:
    """Read up to the events array; decode what precedes it; hand the rest to `reader`."""
    text = b""
    for chunk in chunks:
        text += chunk
        found = _EVENTS_KEY.search(text)
        if found:
            head = _decode(_head_decoder, text[: found.start()] + _EMPTY_EVENTS)
            reader.feed(text[found.end() :])
            return head
        if len(text) > MAX_HEAD_BYTES:
            break
    raise NotStreamable("no events array near the start of the file")


def _decode(decoder: msgspec.json.Decoder, text: bytes) -> Any:
    try:
        return decoder.decode(text)
    except _DECODE_ERRORS as error:
        raise NotStreamable(str(error)) from error


class _EventRuns:
    """The events array, fed in chunks, decoded a run of whole events at a time.

    The text waiting to be decoded is kept in a bytearray whose first byte is a `[`; a run is
    decoded in place by writing `]` over the byte after its last event's `}`, so no run is
    copied on its way to the decoder.
    """

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self.other_count = 0
        self._pending = bytearray(b"[")  # "[" and the text after the last run decoded
        self._failed = False  # the last attempt to decode a run failed

    def feed(self, chunk: bytes) -> None:
        pending = self._pending
        pending += chunk
        cut = _last_boundary(pending)
        if cut is None:
            return
        next_event = _AFTER_EVENT.match(pending, cut + 1).end() - 1
        after, pending[cut + 1] = pending[cut + 1], ord("]")
        try:
            with memoryview(pending) as view:
                self._keep(_events_decoder.decode(view[: cut + 2]))
        except _DECODE_ERRORS as error:
            if self._failed:
                raise NotStreamable(str(error)) from error
            pending[cut + 1] = after
            self._failed = True  # perhaps a boundary inside an event: try with more text
            return
        self._failed = False
        del pending[: next_event - 1]  # a bytearray drops its head without copying the rest
        pending[0] = ord("[")

    def finish(self) -> TraceHead:
        """Decode the last run and the keys after the array; those keys' `TraceHead`."""
        text = bytes(self._pending)
        close = len(text)
        while (close := text.rfind(b"]", 1, close)) >= 0:
            try:
                tail = _head_decoder.decode(b'{"traceEvents": 0' + text[close + 1 :])
                self._keep(_events_decoder.decode(text[: close + 1]))
            except _DECODE_ERRORS:
                continue
            return tail
        raise NotStreamable("the events array does not end where the file does")

    def _keep(self, decoded: list[object]) -> None:
        complete = [e for e in decoded if type(e) is TraceEvent]
        self.events.extend(complete)
        self.other_count += len(decoded) - len(complete)


def _last_boundary(text: bytes) -> int | None:
    """Where the last `}` that closes an event before a `,` and another `{` stands."""
    end = len(text)
    while (end := text.rfind(b"}", 0, end)) >= 0:
        if _AFTER_EVENT.match(text, end + 1):
            return end
    return None
