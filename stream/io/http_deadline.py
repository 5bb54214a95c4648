"""HTTP requests bounded as a whole, not one socket read at a time.

urllib's ``timeout`` bounds each connect and each read. A server that sends
its status line and headers a byte at a time stays inside it for as long as
it likes, and holds whatever waits on the request (``seismo notify``'s loop,
and with it a stop). :func:`open_within` also shuts the request's sockets
down once its whole time is up, so the read in progress ends at once.

Proxies from the environment and TLS work as with ``urllib.request.urlopen``.
A TLS handshake that trickles is still bounded per read only: the socket is
watched from the end of its ``connect``.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Watch:
    """The sockets of one request, shut down together when its time is up.

    >>> a, b = socket.socketpair()
    >>> watch = _Watch()
    >>> watch.add(a)
    >>> watch.expire()
    >>> watch.expired, a.recv(1)
    (True, b'')
    >>> a.close(); b.close()
    """

    def __init__(self) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: its override drops
    # the TLS object under a read another thread may be in.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed or never connected
        pass


def _watched(base: type[http.client.HTTPConnection], watch: _Watch) -> Any:
    class Watched(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            watch.add(self.sock)

    return Watched


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self.watch), req)


class _SecureHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        context = self._context  # type: ignore[attr-defined]
        return self.do_open(_watched(http.client.HTTPSConnection, self.watch), req,
                            context=context)  # fmt: skip


@contextmanager
def open_within(request: urllib.request.Request, timeout_s: float) -> Iterator[Any]:
    """``urllib.request.urlopen(request, timeout=timeout_s)``, whose answer is
    also cut off ``timeout_s`` after the request began, however slowly it comes.

    Raises what ``urlopen`` raises (``HTTPError`` for a status other than
    2xx/3xx); a request still unanswered when its time is up raises
    :class:`TimeoutError`. A read of the answer's body after that time fails
    or ends early.
    """
    watch = _Watch()
    timer = threading.Timer(timeout_s, watch.expire)
    timer.daemon = True
    timer.start()
    opener = urllib.request.build_opener(_Handler(watch), _SecureHandler(watch))
    try:
        try:
            answer = opener.open(request, timeout=timeout_s)
        except urllib.error.HTTPError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            if watch.expired:
                raise TimeoutError(f"no complete answer within {timeout_s:g} s") from exc
            raise
        with answer:
            if watch.expired:  # headers cut off read as complete ones
                raise TimeoutError(f"no complete answer within {timeout_s:g} s")
            yield answer
    finally:
        timer.cancel()
