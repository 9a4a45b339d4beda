"""The SQL functions every lakeline SQLite connection carries, registered on connect
(`register`): `lakeline_actor()` and `lakeline_hash(...)` (the audit triggers),
`lakeline_tokens(...)` (the search triggers) and `lakeline_json(text)` (JSON lookups).

Kept apart from the modules that explain and use them (`access.audit`, `search_vocab`,
`db.json_equality`): importing those for the registration cost ~4 ms of a fresh process's
first connection (a workflow engine's run that never searches or verifies the audit log).
"""

from __future__ import annotations

import getpass
import hashlib
import re
from typing import Any

TOKEN = re.compile(r"[^\W_]+")  # FTS5's unicode61 tokens: runs of letters and digits


def entry_hash(
    prev: str, seq: int, at: str, actor: str, tbl: str, uid: str | None, action: str, changes: str
) -> str:
    """The hash of one audit entry (`lakeline.access.audit`'s module doc)."""
    text = f"{seq}|{at}|{actor}|{tbl}|{uid or ''}|{action}|{changes}"
    inner = _SHA256.copy()  # OpenSSL 3 looks sha256 up again at each hashlib.sha256()
    inner.update(text.encode())
    outer = _SHA256.copy()
    outer.update(f"{prev}|{inner.hexdigest()}".encode())
    return outer.hexdigest()


_SHA256 = hashlib.sha256()  # copied empty: SQLite's audit triggers hash each entry twice


def tokens_json(*values: Any) -> str:
    """`lakeline_tokens(...)`: the distinct FTS5 tokens of `values`, a JSON array (the search
    triggers call it for every row written). ASCII text here; other text as FTS5 folds it
    (`lakeline.search_vocab.tokens_json`)."""
    joined = " ".join(str(value) for value in values if value is not None)
    if joined.isascii():  # tokens of [0-9a-z] only: nothing to escape
        found = set(TOKEN.findall(joined.lower()))
        return '["' + '","'.join(found) + '"]' if found else "[]"
    from lakeline.search_vocab import tokens_json as folded

    return folded(joined)


def bind_none_directly() -> None:
    """Have the sqlite3 module bind None as NULL through an adapter it finds at once. Without
    one it looks None up as a value to adapt and fails there slowly (an `__adapt__` read on a
    type object raises and formats an AttributeError: ~2.1k instructions a NULL parameter, 22
    a step of the batched Recorder; `bench/sqlite_nulls.py`); `{}.get` gives None back, which
    binds as NULL as before. Process-wide (sqlite3's adapters are): left as it is when someone
    registered one for None already."""
    import sqlite3

    key = (type(None), sqlite3.PrepareProtocol)
    if key not in sqlite3.adapters:
        sqlite3.register_adapter(type(None), {}.get)  # type: ignore[arg-type]


def register(dbapi_conn: Any) -> None:
    """Give a SQLite connection lakeline's functions."""
    from lakeline.db.json_equality import canonical_json

    bind_none_directly()

    user = getpass.getuser()
    dbapi_conn.create_function("lakeline_actor", 0, lambda: user)
    dbapi_conn.create_function("lakeline_hash", 8, entry_hash, deterministic=True)
    dbapi_conn.create_function("lakeline_tokens", -1, tokens_json, deterministic=True)
    dbapi_conn.create_function("lakeline_json", 1, canonical_json, deterministic=True)
