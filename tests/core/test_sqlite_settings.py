"""Every SQLite connection lakeline opens gets the same settings, read-only ones included."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.db.engine import SQLITE_CACHE_KIB
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
