"""The weblog receiver under hostile clients, over real sockets on 127.0.0.1: bounded bodies,
lengths and live runs, timeouts for slow and idle clients, and an optional shared token."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline_nextflow import WeblogReceiver, WeblogServer
from nf_helpers import write

RUN = "170aa09c-105f-49d0-99b4-8eb6a146e4a7"
CLIENT_TIMEOUT = 30  # a receiver that never answers fails the test instead of hanging it


def serve(receiver: WeblogReceiver, **options: Any) -> Iterator[WeblogServer]:
    server = WeblogServer("127.0.0.1", 0, receiver, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def server(instance: Instance) -> Iterator[WeblogServer]:
    yield from serve(WeblogReceiver(instance, max_runs=3), timeout=0.5, max_body=1 << 20)


def exchange(server: WeblogServer, raw: bytes) -> tuple[int | None, bytes]:
    """Send raw bytes; (HTTP status or None when the server closed without answering, the
    whole answer). Reads until the server closes the connection."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=CLIENT_TIMEOUT) as client:
        client.sendall(raw)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    if not answer:
        return None, answer
    return int(answer.split(b" ", 2)[1]), answer


def request(body: bytes, *headers: str, length: str | None = None) -> bytes:
    lines = ["POST / HTTP/1.1", "Host: x", "Connection: close", *headers]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def started(run_id: str = RUN, name: str = "demo/pipeline", **workflow: Any) -> bytes:
    payload = {
        "runName": "tiny_turing",
        "runId": run_id,
        "event": "started",
        "utcTime": "2025-06-01T08:00:00Z",
        "metadata": {"workflow": {"manifest": {"name": name}, **workflow}},
    }
    return json.dumps(payload).encode()


def task_event(event: str, h: str, status: str, run_id: str = RUN, **trace: Any) -> bytes:
    record = {"hash": f"{h[:2]}/{h[2:8]}", "name": "STEP (1)", "process": "STEP"}
    record |= {"status": status, "workdir": f"/gone/work/{h[:2]}/{h[2:]}", **trace}
    return json.dumps({"runId": run_id, "event": event, "trace": record}).encode()


def test_content_length_is_checked(server: WeblogServer) -> None:
    body = started()
    for length in ("-1", "abc", "1e3", ""):
        status, answer = exchange(server, request(body, length=length))
        assert status == 400 and b"Content-Length" in answer, (length, answer)
    status, answer = exchange(server, request(b"", length=str(40 << 20)))  # answered unread
    assert status == 413
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert exchange(server, raw)[0] == 411
    assert ll.Run.filter(engine="nextflow").count() == 0


def test_slow_and_idle_clients_time_out(server: WeblogServer) -> None:
    status, answer = exchange(server, request(b"{", length="1000"))  # declares 1000, sends 1
    assert status == 408, answer
    assert exchange(server, b"") == (None, b"")  # connected, says nothing: disconnected
    assert exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\n") == (None, b"")  # headers stall
    assert exchange(server, request(started()))[0] == 200  # still serving
    assert ll.Run.filter(engine="nextflow").count() == 1


def test_lengths_are_bounded(server: WeblogServer) -> None:
    for body in (
        started(name="n" * 100_000),  # a manifest name would become a transform key
        started(run_id="r" * 1000),
        started(name="ok", manifest={"name": "ok", "version": "v" * 500}),
        started(repository="https://github.com/" + "x" * 5000),
    ):
        status, answer = exchange(server, request(body))
        assert status == 400 and b"limit" in answer, answer
    assert exchange(server, request(started()))[0] == 200
    h = "ab" + "c" * 30
    body = task_event("process_started", h, "RUNNING", process="P" * 10_000)
    assert exchange(server, request(body))[0] == 400
    assert [t.key for t in ll.Transform.filter()] == ["demo/pipeline"]


def test_live_runs_are_bounded(server: WeblogServer) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]
    answers = [exchange(server, request(started(run_id)))[0] for run_id in ids]
    assert answers == [200, 200, 200, 503, 503]  # max_runs=3
    assert ll.Run.filter(engine="nextflow").count() == 3
    done = json.loads(started(ids[0]))
    done |= {"event": "completed"}
    done["metadata"]["workflow"]["success"] = True
    assert exchange(server, request(json.dumps(done).encode()))[0] == 200
    assert exchange(server, request(started(ids[3])))[0] == 200  # room again
    assert ll.Run.get(engine="nextflow", engine_ref=ids[0]).status == "completed"


def test_stale_runs_are_aborted(instance: Instance) -> None:
    """A run that sends nothing for `stale_after` is ended as aborted (with its running
    tasks) when another run needs the receiver: never a run that looks alive forever."""
    receiver = WeblogReceiver(instance, stale_after=timedelta(0))
    for server in serve(receiver, timeout=5):
        h = "ab" + "c" * 30
        assert exchange(server, request(started()))[0] == 200
        assert exchange(server, request(task_event("process_started", h, "RUNNING")))[0] == 200
        other = "11111111-2222-4333-8444-555555555555"
        assert exchange(server, request(started(other)))[0] == 200
    workflow = ll.Run.get(engine="nextflow", engine_ref=RUN)
    assert workflow.status == "aborted" and "no event" in (workflow.error or "")
    task = ll.Run.get(engine="nextflow", engine_ref="ab" + "c" * 30)
    assert task.status == "aborted"
    assert ll.Run.get(engine="nextflow", engine_ref=other).status == "started"
    assert list(receiver.sessions) == [other]


def test_shared_token(instance: Instance, tmp_path: Path) -> None:
    token = "s3cret-token"
    for server in serve(WeblogReceiver(instance), timeout=5, token=token):
        status, answer = exchange(server, request(started()))
        assert status == 401 and b"WWW-Authenticate: Basic" in answer
        assert exchange(server, request(started(), "Authorization: Bearer wrong"))[0] == 401
        get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert exchange(server, get)[0] == 401
        assert ll.Run.filter(engine="nextflow").count() == 0
        bearer = f"Authorization: Bearer {token}"
        assert exchange(server, request(started(), bearer))[0] == 200
        # Nextflow's `weblog.basicToken = 'nextflow:<token>'` (any user name)
        basic = base64.b64encode(f"nextflow:{token}".encode()).decode()
        other = started("11111111-2222-4333-8444-555555555555")
        assert exchange(server, request(other, f"Authorization: Basic {basic}"))[0] == 200
    assert ll.Run.filter(engine="nextflow").count() == 2


def test_serve_token_file_errors(lakeline_home: Path, tmp_path: Path) -> None:
    empty = write(tmp_path / "empty", "\n")
    for path, message in ((tmp_path / "nowhere", "cannot read"), (empty, "is empty")):
        command = [sys.executable, "-m", "lakeline.cli", "nextflow", "serve"]
        result = subprocess.run(
            [*command, "--port", "0", "--token-file", str(path)],
            env={**os.environ, "LAKELINE_LOAD_PLUGINS": "nextflow"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_connections_are_bounded(instance: Instance) -> None:
    for server in serve(WeblogReceiver(instance), timeout=20, max_connections=2):
        host, port = server.server_address[:2]
        idle = [socket.create_connection((str(host), port), timeout=CLIENT_TIMEOUT) for _ in "ab"]
        try:
            status, _ = exchange(server, request(started()))  # both slots held: refused
            assert status == 503
        finally:
            for client in idle:
                client.close()
    assert ll.Run.filter(engine="nextflow").count() == 0


def test_deep_nesting(server: WeblogServer) -> None:
    """JSON nested past Python's recursion limit: 400, not a crashed handler."""
    status, answer = exchange(server, request(b"[" * 200_000))
    assert status == 400 and b"nests too deeply" in answer, answer
    assert exchange(server, request(started()))[0] == 200  # still serving
