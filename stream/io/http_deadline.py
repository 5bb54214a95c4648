"""HTTP requests bounded as a whole, not one socket read at a time.

urllib's ``timeout`` bounds each connect and each read. A server that sends
its status line and headers a byte at a time stays inside it for as long as
it likes, and holds whatever waits on the request (``seismo notify``'s loop,
and with it a stop). :func:`open_within` also shuts the request's sockets
down once its whole time is up, so the read in progress ends at once.

Proxies from the environment and TLS work as with ``urllib.request.urlopen``;
a socket is watched from its creation, so a proxy's ``CONNECT`` answer and
the TLS handshake are bounded too (DNS resolution is not). Redirects are not
followed (:class:`_NoRedirect`).
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
    >>> c, d = socket.socketpair()
    >>> watch.add(c)  # a socket created after the time was up is shut at once
    >>> c.recv(1)
    b''
    >>> for sock in (a, b, c, d): sock.close()
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


class _WatchedConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket is watched from its creation: the proxy's
    ``CONNECT`` answer (a tunnel) is bounded too."""

    watch: _Watch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create = self._create_connection  # type: ignore[has-type]

        def watched(*a: Any, **k: Any) -> socket.socket:
            sock = create(*a, **k)
            self.watch.add(sock)
            return sock

        self._create_connection = watched


class _WatchedSecureConnection(http.client.HTTPSConnection, _WatchedConnection):
    """An HTTPS connection watched through the tunnel and the TLS handshake:
    ``HTTPSConnection.connect`` with the handshake after the watch, not in
    ``wrap_socket``."""

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        host = self._tunnel_host or self.host  # type: ignore[attr-defined]
        context = self._context  # type: ignore[attr-defined]
        sock = context.wrap_socket(self.sock, server_hostname=host,
                                   do_handshake_on_connect=False)  # fmt: skip
        self.watch.add(sock)
        sock.do_handshake()
        self.sock = sock


def _bound(base: type[_WatchedConnection], watch: _Watch) -> Any:
    """``base`` with ``watch``: urllib builds the connection from a class."""
    return type(base.__name__, (base,), {"watch": watch})


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_bound(_WatchedConnection, self.watch), req)


class _SecureHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        context = self._context  # type: ignore[attr-defined]
        return self.do_open(_bound(_WatchedSecureConnection, self.watch), req,
                            context=context)  # fmt: skip


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx answer is an ``HTTPError``, not followed: urllib would send the POST on
    as a GET without its body, and its headers (credentials, signature) to
    whatever host ``Location`` names."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextmanager
def open_within(request: urllib.request.Request, timeout_s: float) -> Iterator[Any]:
    """``urllib.request.urlopen(request, timeout=timeout_s)``, whose answer is
    also cut off ``timeout_s`` after the request began, however slowly it comes.

    Raises what ``urlopen`` raises (``HTTPError`` for a status other than
    2xx, redirects included: they are not followed); a request still
    unanswered when its time is up raises
    :class:`TimeoutError`. A read of the answer's body after that time fails
    or ends early.
    """
    watch = _Watch()
    timer = threading.Timer(timeout_s, watch.expire)
    timer.daemon = True
    timer.start()
    opener = urllib.request.build_opener(_Handler(watch), _SecureHandler(watch), _NoRedirect())
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
