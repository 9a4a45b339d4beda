"""Real servers for tests: a throwaway PostgreSQL cluster, a moto S3 and a GCS emulator.

Nothing here is mocked. ``PostgresServer`` runs ``initdb``/``pg_ctl`` from a
local PostgreSQL install (as the ``postgres`` OS user when running as root);
``S3Server`` runs moto's HTTP server in a process of its own. The heavy optional
dependencies (psycopg, boto3, moto) are imported lazily.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from psycopg.sql import Composed

__all__ = ["GCSServer", "PostgresServer", "S3Server", "free_port"]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_PG_FALLBACK_BINDIR = Path("/usr/lib/postgresql/15/bin")
_PG_BINARIES = ("initdb", "pg_ctl", "postgres")
_PG_USER = "postgres"
# Server settings of a test cluster: nothing is durable, many connections.
TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name) or len(name) > 63:
        raise ValueError(f"not a safe database name (want [a-z_][a-z0-9_]{{0,62}}): {name!r}")
    return name


class PostgresServer:
    """A private PostgreSQL cluster in a temp dir, listening on 127.0.0.1:<free port>.

    Tuned for tests (fsync off, trust auth, C locale). Use as a context manager or
    call ``start()``/``stop()``; an atexit hook stops it if the process exits first.
    """

    def __init__(
        self,
        bindir: str | Path | None = None,
        startup_timeout: float = 60.0,
        parent_dir: str | Path | None = None,
        *,
        settings: dict[str, str] | None = None,
        keep: str | Path | None = None,
    ) -> None:
        """``parent_dir`` (default $LAKELINE_PG_TMPDIR, else /tmp) holds the cluster dir.

        A tmpfs such as /dev/shm makes start ~3x and CREATE DATABASE ~10x faster.
        ``settings``: server settings (``-c name=value``) instead of ``TEST_SETTINGS``.
        ``keep``: the cluster's folder, kept on disk (benchmarks): initdb on its first start,
        restarted on the port it had, stopped cleanly (``-m fast``) and never deleted.
        """
        self.bindir = Path(bindir) if bindir is not None else self.find_bindir()
        self.parent_dir = Path(parent_dir or os.environ.get("LAKELINE_PG_TMPDIR") or "/tmp")
        self.startup_timeout = startup_timeout
        self.settings = dict(TEST_SETTINGS if settings is None else settings)
        self.keep = Path(keep) if keep is not None else None
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._as_postgres = os.geteuid() == 0

    # -- discovery -------------------------------------------------------------

    @staticmethod
    def find_bindir() -> Path:
        """Locate the server binaries: $LAKELINE_PG_BINDIR, ``pg_config --bindir``, or PG 15."""
        env = os.environ.get("LAKELINE_PG_BINDIR")
        if env:
            return Path(env)
        pg_config = shutil.which("pg_config")
        if pg_config:
            try:
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
                )
            except (OSError, subprocess.SubprocessError):
                out = None
            if out is not None and out.returncode == 0:
                candidate = Path(out.stdout.strip())
                # Debian's /usr/bin/pg_config comes from libpq-dev and may point at a
                # bindir without the server; only trust it if initdb is there.
                if (candidate / "initdb").is_file():
                    return candidate
        return _PG_FALLBACK_BINDIR

    @classmethod
    def available(cls, bindir: str | Path | None = None) -> tuple[bool, str]:
        """Return ``(True, bindir)`` if a server can be started, else ``(False, reason)``."""
        bindir = Path(bindir) if bindir is not None else cls.find_bindir()
        missing = [b for b in _PG_BINARIES if not os.access(bindir / b, os.X_OK)]
        if missing:
            return False, (
                f"PostgreSQL binaries {', '.join(missing)} not found in {bindir} "
                "(set LAKELINE_PG_BINDIR or put pg_config on PATH)"
            )
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                return False, "running as root but `runuser` is not available"
            try:
                pwd.getpwnam(_PG_USER)
            except KeyError:
                return False, f"running as root but there is no {_PG_USER!r} OS user"
        return True, str(bindir)

    # -- lifecycle -------------------------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        if self._as_postgres:
            return ["runuser", "-u", _PG_USER, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self.base_dir is not None
        # cwd must be readable by the postgres user (root's cwd often is not).
        return subprocess.run(
            self._cmd(*args),
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        """The server log written by pg_ctl."""
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """Directory holding the Unix-domain socket."""
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "sock"

    def start(self) -> Self:
        """initdb a fresh cluster and start it; raise RuntimeError with the log on failure."""
        if self.port is not None:
            return self
        ok, reason = self.available(self.bindir)
        if not ok:
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        if self.keep is not None:
            self.keep.parent.mkdir(parents=True, exist_ok=True)
        parent = self.parent_dir if self.keep is None else self.keep.parent
        # Keep the path short (Unix socket paths are limited to ~107 bytes) and,
        # when root, world-traversable so the postgres user can reach it.
        if self._as_postgres and not parent.stat().st_mode & 0o001:
            raise RuntimeError(
                f"{parent} is not traversable by the postgres user; pick another "
                "parent_dir (e.g. /tmp)"
            )
        if self.keep is not None:
            return self._start_kept(self.keep)
        base = Path(tempfile.mkdtemp(prefix="lakeline-pg-", dir=self.parent_dir))
        self.base_dir = base
        atexit.register(self.stop)
        try:
            self._prepare()
            self._initdb()
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_kept(self, base: Path) -> Self:
        self.base_dir = base
        if not (base / "data").exists():
            base.mkdir(exist_ok=True)
            self._prepare()
            self._initdb()
        port_file = base / "port"
        self._pg_ctl_start(port=int(port_file.read_text()) if port_file.exists() else None)
        port_file.write_text(str(self.port))
        atexit.register(self.stop)
        return self

    def _prepare(self) -> None:
        """The cluster folder and its socket folder, reachable by the postgres user."""
        assert self.base_dir is not None
        self.base_dir.chmod(0o755)
        self.socket_dir.mkdir(mode=0o755, exist_ok=True)
        if self._as_postgres:
            pw = pwd.getpwnam(_PG_USER)
            for p in (self.base_dir, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _initdb(self) -> None:
        res = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            _PG_USER,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}".rstrip()
            )

    def _pg_ctl_start(self, attempts: int = 3, port: int | None = None) -> None:
        """Start on `port`, else on a free port (a new one if another process took it)."""
        settings = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        for attempt in range(attempts):
            chosen = port or free_port()
            opts = f"-p {chosen} -k {self.socket_dir} -c listen_addresses=127.0.0.1 {settings}"
            res = self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(self.startup_timeout)),
                "-o",
                opts,
                "start",
                timeout=self.startup_timeout + 30,
            )
            if res.returncode == 0:
                self.port = chosen
                return
            log = _tail(self.log_file)
            # Lost the race for the port to another process: try a new one.
            if "could not bind" in log and port is None and attempt + 1 < attempts:
                continue
            raise RuntimeError(
                f"pg_ctl start failed (exit {res.returncode}):\n"
                f"{res.stdout}{res.stderr}\n--- tail of {self.log_file} ---\n{log}"
            )

    def stop(self) -> None:
        """Stop the server immediately (if running) and delete its directory (a kept
        cluster: shut down cleanly, its folder stays)."""
        atexit.unregister(self.stop)
        base = self.base_dir
        if base is None:
            return
        if self.keep is not None:
            if self.port is not None:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                    "stop", timeout=300,
                )  # fmt: skip
            self.base_dir = self.port = None
            return
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                    timeout=60,
                )
        shutil.rmtree(base, ignore_errors=True)
        self.base_dir = None
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``dbname`` on this server."""
        if self.port is None:
            raise RuntimeError("PostgresServer is not running")
        return f"postgresql+psycopg://{_PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def _admin_execute(self, query: Composed) -> None:
        import psycopg

        if self.port is None:
            raise RuntimeError("PostgresServer is not running")
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=_PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(query)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (optionally copied from ``template``); return its URL.

        A template with open connections cannot be copied: PostgreSQL itself waits
        ~5 s for them to go away, then this raises RuntimeError.
        """
        import psycopg
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_check_identifier(name)))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(
                query, sql.Identifier(_check_identifier(template))
            )
        try:
            self._admin_execute(query)
        except psycopg.errors.ObjectInUse as exc:
            raise RuntimeError(
                f"cannot create {name!r}: template {template!r} has open connections "
                f"(dispose engines bound to it first): {exc}"
            ) from exc
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, terminating its connections (WITH (FORCE))."""
        from psycopg import sql

        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(_check_identifier(name))
            )
        )

    def drop_roles(self, database: str) -> None:
        """Drop the group roles `lakeline init` made for `database` (roles are cluster-wide)."""
        from psycopg import sql

        for level in ("read", "write", "admin"):
            name = _check_identifier(f"{database[:50]}_{level}")
            self._admin_execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


class _ServerProcess:
    """A test server in a process of its own on 127.0.0.1 (`start()` in the subclass): stop,
    context manager and endpoint URL."""

    port: int | None
    _process: subprocess.Popen[bytes] | None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (its buckets go with it)."""
        atexit.unregister(self.stop)
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://127.0.0.1:{self.port}"


class S3Server(_ServerProcess):
    """moto's S3-compatible HTTP server (`moto.server`) on 127.0.0.1, in a process of its own.

    Its own process: a server thread inside the test process shares its GIL and locks, and a
    client blocked in C code (h5py reading a remote file through fsspec) once kept moto from
    starting the thread that would answer it. Two ``S3Server`` objects are two servers with
    their own buckets; ``reset()`` wipes one.
    """

    key = "testing"
    secret = "testing"
    region = "us-east-1"

    def __init__(self, port: int | None = None, *, quiet: bool = True) -> None:
        """``port=None`` picks a free port (retried if another process takes it first).

        ``quiet`` sends the server's request log to /dev/null (else to this stderr)."""
        self._requested_port = port
        self._quiet = quiet
        self._process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def start(self, timeout: float = 60.0) -> Self:
        """Start the server and wait until it answers."""
        import sys
        import time
        import urllib.request

        if self._process is not None:
            return self
        for _attempt in range(3):
            port = self._requested_port or free_port()
            output = subprocess.DEVNULL if self._quiet else None
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=output,
                stderr=output,
            )
            deadline = time.monotonic() + timeout
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    with opener.open(f"http://127.0.0.1:{port}/moto-api/", timeout=2) as answer:
                        answer.read()
                    self._process, self.port = process, port
                    atexit.register(self.stop)
                    return self
                except OSError:
                    time.sleep(0.1)
            process.kill()
            process.wait()
            if self._requested_port is not None:
                break
        raise RuntimeError(f"S3Server: moto.server did not answer on 127.0.0.1 (port {port})")

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` / fsspec ``storage_options``."""
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def env(self) -> dict[str, str]:
        """Environment variables pointing botocore/s3fs at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def client(self) -> Any:
        """A boto3 S3 client bound to this server."""
        boto3: Any = importlib.import_module("boto3")  # untyped; keeps mypy --strict quiet
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (us-east-1, so no LocationConstraint)."""
        self.client().create_bucket(Bucket=name)

    def reset(self) -> None:
        """Wipe all moto state (every bucket) via moto's ``/moto-api/reset``."""
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            resp.read()


class GCSServer(_ServerProcess):
    """A Google Cloud Storage emulator (`gcp-storage-emulator`, in memory) on 127.0.0.1, in a
    process of its own; gcsfs talks to it through ``endpoint_url`` with anonymous access."""

    project = "lakeline-test"

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def start(self, timeout: float = 60.0) -> Self:
        """Start the emulator and wait until it answers."""
        import sys
        import time
        import urllib.error
        import urllib.request

        if self._process is not None:
            return self
        port = free_port()
        command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--in-memory"]
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with opener.open(f"http://127.0.0.1:{port}/storage/v1/b", timeout=2) as answer:
                    answer.read()
            except urllib.error.HTTPError:
                pass  # it answers: an error status is still an answer
            except OSError:
                time.sleep(0.1)
                continue
            self._process, self.port = process, port
            atexit.register(self.stop)
            return self
        process.kill()
        process.wait()
        raise RuntimeError(f"GCSServer: the emulator did not answer on 127.0.0.1:{port}")

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``gcsfs.GCSFileSystem`` / fsspec ``storage_options``."""
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name``."""
        import json
        import urllib.request

        body = json.dumps({"name": name}).encode()
        req = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project={self.project}",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            resp.read()
