"""Instances: a database plus a default storage. `init`, `connect` and the current instance."""

from __future__ import annotations

import getpass
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lakeline.config import (
    InstanceConfig,
    current_name,
    home,
    load_config,
    set_current,
    validate_name,
)
from lakeline.errors import (
    DatabaseUnreachable,
    InstanceNotFound,
    LakelineError,
    NotConnected,
    SchemaOutOfDate,
    StorageError,
)
from lakeline.ids import new_uid
from lakeline.instance_statements import register_statement, storage_statements, user_statement
from lakeline.storage.keys import INTERNAL_PREFIX, REFERENCE_STORAGE
from lakeline.storage.roots import filesystem, join, normalize_root, protocol_of, strip_protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem
    from sqlalchemy import Connection, Engine

    from lakeline.db.session import SessionFactory
    from lakeline.models import Storage, User

_T = TypeVar("_T")
_current: Instance | None = None
_opened: dict[str, Instance] = {}  # instances opened read-only by name (`using()`)
_lock = threading.RLock()


class Instance:
    """An instance: its engine, sessions, default storage and the current user.

    `Instance("atlas")` opens instance `atlas` read-only, without changing the current one
    (query it with `ll.Artifact.using(atlas)`); `connect()`/`init()` give the writable one.
    """

    def __init__(
        self,
        config: InstanceConfig | str,
        engine: Engine | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        from lakeline.db.session import SessionFactory

        if isinstance(config, str):  # by name: read-only
            config, engine, read_only = _open_engine(config)
        if engine is None:
            raise TypeError("Instance(config, engine): an InstanceConfig needs its engine")
        self.config = config
        self.engine = engine
        self.read_only = read_only
        self.sessions: SessionFactory = SessionFactory(engine, self, read_only=read_only)
        self._storages: dict[int, Storage] = {}
        self._default_storage_id: int | None = None
        self._user: User | None = None
        self.created = False  # set by init() when it created the instance (not joined it)
        self._modules: dict[str, str] | None = None

    @property
    def modules(self) -> dict[str, str]:
        """The schema modules this instance mounts: {name: distribution} (read once)."""
        if self._modules is None:
            from lakeline.modules.mounting import read_mounted

            with self.engine.connect() as conn:
                self._modules = read_mounted(conn)
        return self._modules

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        """Pickled by name and uid: unpickled as `reopen(name, uid)` in the other process."""
        return reopen, (self.name, self.uid)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return (
            f"Instance(name={self.name!r}, db={self.dialect}, storage={self.config.storage!r}"
            f"{mode})"
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def uid(self) -> str:
        return self.config.uid

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    # -- storages -------------------------------------------------------------------------------

    def load_storages(self) -> None:
        """(Re)read the storage records of this instance."""
        storages, setting = storage_statements()
        with self.sessions.read() as session:
            self._storages = {s.id: s for s in session.scalars(storages)}
            default = session.execute(setting, {"key": "default_storage_uid"}).scalar()
        for storage in self._storages.values():
            if default is not None and storage.uid == default:
                self._default_storage_id = storage.id

    @property
    def storage(self) -> Storage:
        """The default storage, where uploaded artifacts go."""
        if self._default_storage_id is None:
            self.load_storages()
        if self._default_storage_id is None:
            raise LakelineError(f"instance {self.name!r} has no default storage recorded")
        return self._storages[self._default_storage_id]

    def storages(self) -> list[Storage]:
        """All storage roots registered in this instance."""
        return list(self.storages_by_id().values())

    def storages_by_id(self) -> dict[int, Storage]:
        """The storages by id, as loaded (a new dict each time they are loaded again)."""
        if not self._storages:
            self.load_storages()
        return self._storages

    def storage_by_id(self, storage_id: int) -> Storage:
        if storage_id not in self._storages:
            self.load_storages()
        return self._storages[storage_id]

    def register_storage(self, root: str | os.PathLike[str]) -> Storage:
        """Register another storage root (files inside it are then registered in place)."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from lakeline.models import Storage
        from lakeline.models.base import utcnow

        location = normalize_root(root)
        for storage in self.storages():
            if storage.root == location:
                if storage.type == REFERENCE_STORAGE:  # `/` held references only until now
                    return self._promote_storage(storage)
                return storage
        values = {
            "uid": new_uid(12),
            "root": location,
            "type": protocol_of(location),
            "instance_uid": self.uid,
            "created_at": utcnow(),
        }
        try:
            with self.sessions.write() as session:
                record: Storage = session.scalars(register_statement(), values).one()
        except IntegrityError as exc:  # registered concurrently (its root's unique index)
            from lakeline.db.errors import unique_violation

            if not unique_violation(exc):  # another refusal: the database's own error
                raise
            with self.sessions.read() as session:
                found = session.scalars(select(Storage).where(Storage.root == location)).first()
            if found is None:  # the clash was not its root's
                raise
            record = found
            self.load_storages()
            return record
        # the record as inserted (its row returned): the storages as loaded with it, in a new
        # dict as a reload gives (not read again: ~1.2 ms on PostgreSQL, the first run of an
        # integration in a new folder registers one)
        self._storages = {**self._storages, record.id: record}
        return record

    def _promote_storage(self, storage: Storage) -> Storage:
        """Make a reference storage a real one (its root was registered as a storage)."""
        from sqlalchemy import update

        from lakeline.models import Storage

        with self.sessions.write() as session:
            session.execute(
                update(Storage)
                .where(Storage.id == storage.id)
                .values(type=protocol_of(storage.root))
            )
        self.load_storages()
        return self._storages[storage.id]

    def storage_options(self, storage: Storage) -> dict[str, Any]:
        """fsspec options for a storage (those of the instance config for its default root)."""
        return dict(self.config.storage_options) if storage.root == self.config.storage else {}

    def fs(self, storage: Storage) -> AbstractFileSystem:
        """The fsspec filesystem of `storage` (a reference storage has none: StorageError)."""
        if storage.type == REFERENCE_STORAGE:
            raise StorageError(
                f"storage {storage.root!r} (uid {storage.uid}) only records references to "
                "data lakeline holds no bytes for: there is no filesystem to read it with"
            )
        return filesystem(storage.root, self.storage_options(storage))

    # -- user -----------------------------------------------------------------------------------

    @property
    def user(self) -> User:
        """The user records are created by: on PostgreSQL the connected role (`session_user`),
        on SQLite the OS login name. Never taken from the environment."""
        if self._user is None:
            self._user = _get_or_create_user(self)
        return self._user


def identity(engine: Engine) -> str:
    """Who is writing: the PostgreSQL login role (the database checks `created_by` against
    it), or on SQLite, a single-user file whose permissions are the boundary, the OS user."""
    if engine.dialect.name != "postgresql":
        return getpass.getuser()
    from sqlalchemy import text

    with engine.connect() as conn:
        return str(conn.execute(text("SELECT session_user")).scalar_one())


def _get_or_create_user(instance: Instance) -> User:
    from sqlalchemy.exc import IntegrityError

    from lakeline.models import User

    handle = identity(instance.engine)
    for _ in range(3):
        with instance.sessions.read() as session:
            user: User | None = session.scalars(user_statement(), {"handle": handle}).first()
        if user is not None:
            return user
        try:
            with instance.sessions.write() as session:
                user = User(handle=handle, uid=new_uid(8))
                session.add(user)
            return user
        except IntegrityError:
            continue  # created concurrently: read it back
    raise LakelineError(f"could not create the user record {handle!r}")


def _probe(engine: Engine, url: str, then: Callable[[Connection], _T] | None = None) -> _T | None:
    """Connect and run `SELECT 1` (DatabaseUnreachable if that fails), then `then(conn)` on the
    same connection (its errors as they are): connecting's first reads, one checkout."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from lakeline.db.engine import redact

    try:
        conn = engine.connect()
        try:
            conn.execute(text("SELECT 1"))
        except BaseException:
            conn.close()
            raise
    except DBAPIError as exc:  # errors db/errors.py has no better word for
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnreachable(
            f"cannot reach the database {redact(url)}: {reason}. "
            "Check that the server runs, the URL and the credentials"
        ) from exc
    with conn:
        return None if then is None else then(conn)


def _first_reads(conn: Connection) -> tuple[dict[str, str], list[str] | None]:
    """The modules the instance mounts and its `alembic_version` rows."""
    from lakeline.db.migrate import revisions
    from lakeline.modules.mounting import read_mounted

    return read_mounted(conn), revisions(conn)


def _default_db(root: str, name: str) -> str:
    local = protocol_of(root) == "local"
    folder = Path(root) / INTERNAL_PREFIX if local else home() / "databases"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / f'{name}.db'}"


def _write_storage_marker(root: str, storage_options: dict[str, Any], info: dict[str, str]) -> None:
    """Write `.lakeline/storage.json` into the root: proves we can write there."""
    fs = filesystem(root, storage_options)
    target = strip_protocol(join(root, f"{INTERNAL_PREFIX}/storage.json"))
    try:
        if protocol_of(root) == "local":
            Path(root, INTERNAL_PREFIX).mkdir(parents=True, exist_ok=True)
        fs.pipe_file(target, json.dumps(info, indent=2).encode())
    except Exception as exc:
        raise StorageError(
            f"cannot write to storage {root}: {type(exc).__name__}: {exc}. "
            "Check the location exists and that your credentials allow writing there"
        ) from exc


def init(
    storage: str | os.PathLike[str],
    *,
    db: str | None = None,
    name: str | None = None,
    storage_options: dict[str, Any] | None = None,
    modules: Sequence[str] = (),
) -> Instance:
    """Create an instance (or join the one that `db` already holds) and connect to it;
    `modules`: schema modules to mount (installed distributions, see docs/modules.md)."""
    from sqlalchemy import select

    from lakeline.db.engine import make_engine, normalize_url
    from lakeline.db.migrate import current_revision, ensure_schema, upgrade
    from lakeline.models import Setting, Storage
    from lakeline.modules import mounting

    if modules:
        from lakeline.modules.spec import get

        for module in modules:
            get(module)  # an unknown name fails before anything is created
    root = normalize_root(storage)
    if protocol_of(root) == "local":
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the storage folder {root}: {exc}") from exc
    name = validate_name(name or Path(root.rstrip("/")).name)
    options = dict(storage_options or {})
    url = normalize_url(db) if db else _default_db(root, name)
    engine = make_engine(url)
    _probe(engine, url)
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision is None and not modules:
        upgrade(engine)
    elif revision is not None:
        ensure_schema(
            engine,
            auto_migrate=engine.dialect.name == "sqlite",
            modules=mounting.required(engine, name),
        )
    if modules:
        mounting.mount(engine, name, modules)

    config = InstanceConfig(name=name, db=url, storage=root, uid="", storage_options=options)
    instance = Instance(config, engine)
    with instance.sessions.write() as session:
        existing = session.get(Setting, "instance_uid")
        if existing is None:
            uid = new_uid(12)
            session.add(Setting(key="instance_uid", value=uid))
            session.add(Setting(key="instance_name", value=name))
        else:
            uid = existing.value
        _write_storage_marker(root, options, {"instance_uid": uid, "instance_name": name})
        record = session.scalars(select(Storage).where(Storage.root == root)).first()
        if record is not None and record.type == REFERENCE_STORAGE:
            record.type = protocol_of(root)  # `/` held references only until now
        if record is None:
            record = Storage(uid=new_uid(12), root=root, type=protocol_of(root), instance_uid=uid)
            session.add(record)
            session.flush()
        if session.get(Setting, "default_storage_uid") is None:
            session.add(Setting(key="default_storage_uid", value=record.uid))
    from lakeline.access.roles import setup_roles

    setup_roles(engine)  # PostgreSQL, as the owner: the read / write / admin group roles
    config.uid = uid
    config.write()
    instance.created = existing is None
    instance.load_storages()
    instance.user  # noqa: B018 - create the user record now
    _set_global(instance)
    set_current(name)
    return instance


def connect(name: str | None = None) -> Instance:
    """Connect this process to instance `name` (default: the current one) and return it."""
    from lakeline.db.engine import make_engine
    from lakeline.db.migrate import check_schema
    from lakeline.modules.mounting import required

    name = name or current_name()
    if not name:
        raise NotConnected(
            "no instance given and none is current: run `lakeline init --storage ./data`, "
            "or `lakeline connect NAME`"
        )
    config = load_config(name)
    engine = make_engine(config.db, create=False)
    read = _probe(engine, config.db, _first_reads)  # one connection for the three
    assert read is not None
    mounted, rows = read
    modules = required(engine, config.name, mounted)  # ModuleNotInstalled names the distribution
    check_schema(engine, rows, auto_migrate=engine.dialect.name == "sqlite", modules=modules)
    instance = Instance(config, engine)
    instance.load_storages()
    _set_global(instance)
    return instance


def migrate(name: str | None = None) -> tuple[str | None, str, str | None]:
    """Bring instance `name`'s schema (the core's and every mounted module's) up to date:
    (core revision before, after, SQLite backup)."""
    from lakeline.db.engine import make_engine
    from lakeline.db.migrate import (
        HEAD_REVISION,
        backup_sqlite,
        check_not_newer,
        core_of,
        modules_behind,
        revisions,
        upgrade,
    )
    from lakeline.modules.mounting import required

    name = name or current_name()
    if not name:
        raise NotConnected("no instance given and none is current: `lakeline connect NAME`")
    config = load_config(name)
    engine = make_engine(config.db)  # may create the SQLite file: migrating makes its schema
    _probe(engine, config.db)
    try:
        with engine.connect() as conn:
            rows = revisions(conn)
        before = core_of(rows)
        check_not_newer(engine, before)  # before any backup: there is nothing to do
        modules = required(engine, name)
        backup = None
        if before != HEAD_REVISION or modules_behind(engine, rows or [], modules):
            database = engine.url.database
            if engine.dialect.name == "sqlite" and before is not None and database:
                backup = str(backup_sqlite(Path(database), before))
            upgrade(engine, modules=modules)
            with _lock:  # this process's connections to it cache what a migration changes
                if (
                    _current is not None
                    and _current.config.name == name
                    and engine.dialect.name == "postgresql"  # (`upgrade`: not SQLite's)
                ):
                    _current.engine.dispose()
        elif modules or engine.dialect.name == "postgresql":
            # at head: triggers of module tables mounted before they were audited, and (on
            # PostgreSQL) audit functions made again for columns added since they were made
            from sqlalchemy import text

            from lakeline import checkpoints
            from lakeline.access.audit import install_module_triggers
            from lakeline.access.audit_pg import install_audits
            from lakeline.access.roles import is_owner
            from lakeline.db.migrate import MIGRATION_LOCK

            with engine.execution_options(lakeline_write=True).begin() as conn:
                if conn.dialect.name == "postgresql":  # one at a time, as upgrades: a second
                    # CREATE OR REPLACE of a function failed ("tuple concurrently updated")
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
                if conn.dialect.name == "sqlite" or is_owner(conn):
                    if modules:
                        install_module_triggers(conn, [m.prefix for m in modules])
                    if conn.dialect.name == "postgresql":
                        install_audits(conn)
                checkpoints.reach("migrate.audits")
        from lakeline.access.roles import setup_roles

        setup_roles(engine)  # idempotent: new tables get their GRANTs
    finally:
        engine.dispose()
    return before, HEAD_REVISION, backup


def _open_engine(name: str) -> tuple[InstanceConfig, Engine, bool]:
    """Config and a read-only engine for instance `name`, its schema checked (never migrated:
    another instance is read as it is, and a schema newer or older than this lakeline's is
    refused with the revision named)."""
    from lakeline.db.engine import make_engine
    from lakeline.db.migrate import ensure_schema
    from lakeline.modules.mounting import required

    config = load_config(validate_name(name))
    engine = make_engine(config.db, create=False, read_only=True)
    try:
        _probe(engine, config.db)
        ensure_schema(engine, auto_migrate=False, modules=required(engine, config.name))
    except SchemaOutOfDate as exc:
        engine.dispose()
        raise SchemaOutOfDate(f"instance {name!r}: {exc}") from exc
    except BaseException:
        engine.dispose()
        raise
    return config, engine, True


def open_instance(name: str | Instance) -> Instance:
    """Instance `name` opened read-only (once per process), or `name` itself if an Instance.
    The current instance is not changed."""
    if isinstance(name, Instance):
        return name
    if not isinstance(name, str):
        raise TypeError(f"an instance name or Instance, not {type(name).__name__}")
    with _lock:
        found = _opened.get(name)
        if found is None:
            found = _opened[name] = Instance(name)
        return found


def reopen(name: str, uid: str) -> Instance:
    """Instance `name` (uid `uid`) in this process, for a record or Instance pickled in
    another: the connected instance (connecting to the current one first) when it has that
    uid, else `name` opened read-only. InstanceNotFound when this machine knows no instance
    of that name and uid."""
    try:
        here = current()
    except (NotConnected, InstanceNotFound):
        here = None
    if here is not None and here.uid == uid:
        return here
    try:
        opened = open_instance(name)
    except InstanceNotFound as exc:
        raise InstanceNotFound(
            f"a record of instance {name!r} (uid {uid}) was passed to this process, which "
            f"cannot open it: {exc}"
        ) from None
    if opened.uid != uid:
        raise InstanceNotFound(
            f"a record of instance {name!r} (uid {uid}) was passed to this process, where "
            f"{name!r} is another instance (uid {opened.uid}): register it here under a "
            "name of its own"
        )
    return opened


def _set_global(instance: Instance | None) -> None:
    global _current
    with _lock:
        if _current is not None and _current is not instance:
            _current.engine.dispose()
        _current = instance


def disconnect() -> None:
    """Forget the instance this process is connected to (and those opened read-only); end
    the file worker of its large saves, if one runs (artifacts/offload.py)."""
    from lakeline.artifacts import offload

    offload.end()
    _set_global(None)
    with _lock:
        for opened in _opened.values():
            opened.engine.dispose()
        _opened.clear()


def connected() -> Instance | None:
    """The instance this process is connected to, without connecting."""
    return _current


def current() -> Instance:
    """The connected instance, connecting to the current one on first use."""
    with _lock:
        if _current is not None:
            return _current
        return connect()
