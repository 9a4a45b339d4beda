"""The HTTP side of `lakeline nextflow serve`: every POST body goes to a `WeblogReceiver`.

Bounded against hostile or broken clients: a body needs a valid `Content-Length` no larger
than `max_body` (else 400/411/413, answered without reading it); a client gets `timeout`
seconds for its request line and headers, and as long again for its whole body (else 408, or
a silent close while it has sent no complete header); at most `max_connections` are handled at
once (more get 503); with a shared `token`, a request without it gets 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lakeline_nextflow.weblog import WeblogReceiver

log = logging.getLogger("lakeline.nextflow.weblog")
MAX_BODY = 16 << 20
TIMEOUT = 30.0  # seconds a client gets for its headers, and again for its body
MAX_CONNECTIONS = 64
SWEEP_EVERY = 60.0  # seconds between checks for stale runs
_DIGITS = re.compile(r"[0-9]{1,19}")


def read_token(path: str | Path) -> str:
    """The shared token in a file (surrounding whitespace ignored); a clear error if unusable."""
    from lakeline.errors import LakelineError

    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise LakelineError(f"cannot read the token file {path}: {exc}") from None
    if not token:
        raise LakelineError(f"the token file {path} is empty: write the shared token into it")
    if any(c.isspace() for c in token):
        raise LakelineError(f"the token in {path} contains whitespace: use one word")
    return token


class _Handler(BaseHTTPRequestHandler):
    server: WeblogServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.client_timeout)  # every read and write

    def do_POST(self) -> None:
        if not self._authorized():
            return
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self._answer(411, "a Content-Length header is required (no chunked bodies)")
            return
        if len(set(lengths)) > 1 or not _DIGITS.fullmatch(lengths[0].strip()):
            shown = ", ".join(repr(v) for v in lengths)[:80]
            self._answer(400, f"Content-Length {shown} is not one non-negative integer")
            return
        length = int(lengths[0].strip())
        if length > self.server.max_body:
            self._answer(413, f"payload larger than {self.server.max_body} bytes")
            return
        try:
            body = self._read(length)
        except TimeoutError:
            self._answer(408, f"the body did not arrive within {self.server.client_timeout:g} s")
            return
        if len(body) < length:
            self._answer(400, f"the body ended after {len(body)} of {length} bytes")
            return
        code, message = self.server.receiver.handle(body)
        self._answer(code, message)

    def do_GET(self) -> None:
        if not self._authorized():
            return
        counts = dict(self.server.receiver.counts)
        self._answer(200, f"lakeline weblog receiver; events so far: {counts}")

    def _read(self, length: int) -> bytes:
        """The body, within one deadline for all of it (a trickle cannot hold the handler)."""
        deadline = time.monotonic() + self.server.client_timeout
        chunks: list[bytes] = []
        got = 0
        while got < length:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.connection.settimeout(left)
            chunk = self.rfile.read1(min(length - got, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _authorized(self) -> bool:
        """No token configured, or `Authorization: Bearer TOKEN` / `Basic base64(USER:TOKEN)`
        (Nextflow's `weblog.basicToken = 'USER:TOKEN'`), compared in constant time."""
        token = self.server.token
        if token is None:
            return True
        scheme, _, value = (self.headers.get("Authorization") or "").strip().partition(" ")
        given = [value.strip().encode()] if scheme.lower() == "bearer" else []
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True)
            except (ValueError, binascii.Error):
                decoded = b""
            given = [decoded, decoded.partition(b":")[2]]
        expected = token.encode()
        if any([hmac.compare_digest(candidate, expected) for candidate in given]):
            return True
        self.server.receiver.counts["unauthorized"] += 1
        self._answer(
            401, "a valid token is required", ("WWW-Authenticate", 'Basic realm="lakeline"')
        )
        return False

    def _answer(self, code: int, message: str, *headers: tuple[str, str]) -> None:
        body = json.dumps({"ok": code == 200, "message": message}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)


class WeblogServer(ThreadingHTTPServer):
    """An HTTP server that feeds every POST to a WeblogReceiver (see the module's limits).

    Every `sweep_every` seconds (None: never) it ends the receiver's stale runs.
    """

    daemon_threads = True

    def __init__(
        self,
        host: str,
        port: int,
        receiver: WeblogReceiver,
        *,
        token: str | None = None,
        timeout: float = TIMEOUT,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
        sweep_every: float | None = SWEEP_EVERY,
    ) -> None:
        self.receiver = receiver
        self.token = token
        self.client_timeout = timeout
        self.max_body = max_body
        self.max_connections = max_connections
        self.sweep_every = sweep_every
        self._active = 0
        self._slots = threading.Lock()
        self._swept = time.monotonic()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._slots:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            self.receiver.counts["refused"] += 1
            _refuse(request)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._slots:
                self._active -= 1

    def service_actions(self) -> None:
        """Between requests (serve_forever's loop): end stale runs now and then."""
        if self.sweep_every is not None and time.monotonic() - self._swept >= self.sweep_every:
            self._swept = time.monotonic()
            self.receiver.end_stale()


def _refuse(request: socket.socket) -> None:
    body = b'{"ok": false, "message": "too many connections"}'
    head = f"HTTP/1.0 503 Service Unavailable\r\nContent-Length: {len(body)}\r\n\r\n"
    try:
        request.settimeout(1.0)
        request.sendall(head.encode() + body)
    except OSError:
        pass
