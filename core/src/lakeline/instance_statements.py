"""The statements an instance runs on connecting and registering storages, as SQL text built
once a process and loaded by the ORM (`from_statement`): the constructs they spell cost
~1.5-4 ms each to compile, or the unit of work's flush to run, in a fresh process (every
connect's first read, a workflow engine's first run in a new folder)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def storage_statements() -> tuple[Any, Any]:
    """`load_storages`' reads as SQL text built once a process, loaded by the ORM
    (`from_statement`): the constructs they spell, `select(Storage)` and `session.get(Setting,
    key)`, cost ~4 ms to compile in a fresh process (every connect's first read)."""
    from sqlalchemy import select, text

    from lakeline.models import Storage

    table = Storage.__table__
    names = ", ".join(f'storages."{c.name}"' for c in table.columns)
    textual = text(f"SELECT {names} FROM storages").columns(*table.columns)
    setting = text('SELECT settings."value" FROM settings WHERE settings."key" = :key')
    return select(Storage).from_statement(textual), setting


@functools.cache
def register_statement() -> Any:
    """`register_storage`'s INSERT as SQL text built once a process, its row returned and
    loaded by the ORM (`from_statement`): the ORM's unit of work for `session.add(Storage(...))`
    costs ~2-3 ms in a fresh process (the first run of an integration in a new folder)."""
    from sqlalchemy import bindparam, select, text

    from lakeline.models import Storage

    table = Storage.__table__
    given = ("uid", "root", "type", "instance_uid", "created_at")
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    sql = (
        f"INSERT INTO storages ({', '.join(given)}) "
        f"VALUES ({', '.join(':' + name for name in given)}) RETURNING {names}"
    )
    binds = [bindparam(name, type_=table.c[name].type) for name in given]
    textual = text(sql).bindparams(*binds).columns(*table.columns)
    return select(Storage).from_statement(textual)


@functools.cache
def user_statement() -> Any:
    """The user record by handle, as SQL text built once a process (`storage_statements`):
    `select(User).where(User.handle == handle)` costs ~1.5 ms to compile in a fresh process."""
    from sqlalchemy import bindparam, select, text

    from lakeline.models import User
    from lakeline.models.base import Str

    table = User.__table__
    names = ", ".join(f'users."{c.name}"' for c in table.columns)
    sql = f"SELECT {names} FROM users WHERE users.handle = :handle"
    handle = bindparam("handle", type_=Str())  # a NUL byte refused, as the ORM's comparison
    textual = text(sql).bindparams(handle).columns(*table.columns)
    return select(User).from_statement(textual)
