"""Every SQLite connection lakeline opens gets the same settings, read-only ones included."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import lakeline as ll
from lakeline.db.engine import SQLITE_CACHE_KIB
from lakeline.db.sqlite_functions import bind_none_directly
from lakeline.instance import Instance, init


def _settings(instance: Instance) -> dict[str, object]:
    with instance.engine.connect() as conn:
        return {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "synchronous", "cache_size")
        }


def test_connections_hold_a_large_page_cache(lakeline_home: Path, tmp_path: Path) -> None:
    """A catalog's indexes stay in the connection's page cache (SQLite's default is 2 MiB)."""
    instance = init(str(tmp_path / "storage"), name="settings")
    expected = {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,  # NORMAL
        "cache_size": -SQLITE_CACHE_KIB,
    }
    assert _settings(instance) == expected
    assert SQLITE_CACHE_KIB >= 64 * 1024
    reader = ll.Instance("settings")  # read-only: its own engine, the same settings
    assert _settings(reader) == expected


NONE_KEY = (type(None), sqlite3.PrepareProtocol)


def test_none_binds_as_null_through_an_adapter(lakeline_home: Path, tmp_path: Path) -> None:
    """A None parameter is adapted at once (sqlite3 otherwise looks it up as a value to adapt,
    raising and dropping an AttributeError each) and is still bound as SQL NULL."""
    instance = init(str(tmp_path / "storage"), name="nulls")
    assert NONE_KEY in sqlite3.adapters
    with instance.engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT typeof(?), ? IS NULL", (None, None)).one()
    assert tuple(found) == ("null", 1)


def test_an_adapter_of_none_registered_before_is_kept() -> None:
    """sqlite3's adapters are the process's: one registered for None before stays."""
    saved = sqlite3.adapters.pop(NONE_KEY, None)

    def mine(value: None) -> None:
        return value

    sqlite3.register_adapter(type(None), mine)
    try:
        bind_none_directly()
        assert sqlite3.adapters[NONE_KEY] is mine
    finally:
        sqlite3.adapters.pop(NONE_KEY, None)
        if saved is not None:
            sqlite3.adapters[NONE_KEY] = saved
