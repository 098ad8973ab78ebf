"""What every link of tools/transport.py is: the one error family, the byte
channel a backend provides, and FrameLink, which frames payloads over it."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Protocol

from protocol import frames

DEFAULT_TIMEOUT = 5.0


class TransportError(Exception):
    """Any failure of a link. Messages are one line and carry no payload bytes."""


class BadURL(TransportError):
    pass


class PortNotFound(TransportError):
    pass


class PortBusy(TransportError):
    pass


class LinkTimeout(TransportError):
    pass


class LinkClosed(TransportError):
    pass


class BackendMissing(TransportError):
    pass


class _Channel(Protocol):
    """A byte pipe. read() returns b"" on timeout and raises LinkClosed at EOF."""

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float | None) -> bytes: ...

    def close(self) -> None: ...


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


_DEFAULT: Any = object()


class FrameLink:
    """Frames over a byte channel (see tools/transport.py's doc)."""

    def __init__(self, channel: _Channel, url: str, timeout: float | None = DEFAULT_TIMEOUT
                 ) -> None:
        self._ch = channel
        self.url = url
        self.timeout = timeout
        self._decoder = frames.Decoder()
        self._ready: deque[bytes] = deque()
        self.closed = False

    @property
    def frame_errors(self) -> int:
        return self._decoder.errors

    def send(self, payload: bytes) -> None:
        """Send one payload as one frame."""
        try:
            frame = frames.encode(payload)
        except frames.FrameError as e:
            raise TransportError(f"cannot frame the payload: {e}") from None
        self.raw_write(frame)

    def raw_write(self, data: bytes) -> None:
        """Write bytes unframed (tests of the lock's decoder)."""
        if self.closed:
            raise LinkClosed(f"{self.url}: link is closed")
        self._ch.write(bytes(data))

    def recv(self, timeout: float | None = _DEFAULT) -> bytes:
        """The next frame's payload. `timeout` in seconds (None: wait forever;
        left out: the link's default). Raises LinkTimeout or LinkClosed."""
        if timeout is _DEFAULT:
            timeout = self.timeout
        if self.closed:
            raise LinkClosed(f"{self.url}: link is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise LinkTimeout(f"{self.url}: no frame within {timeout:g} s")
            data = self._ch.read(left)
            if data:
                self._ready.extend(self._decoder.feed(data))
        return self._ready.popleft()

    def wait_ready(self, timeout: float) -> None:
        """Block until a frame has arrived (left for recv()). Raises
        LinkTimeout, or LinkClosed if the peer closed first."""
        deadline = time.monotonic() + timeout
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(f"{self.url}: no frame within {timeout:g} s")
            data = self._ch.read(left)
            if data:
                self._ready.extend(self._decoder.feed(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ch.close()

    def __enter__(self) -> FrameLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FrameLink {self.url}{' closed' if self.closed else ''}>"
