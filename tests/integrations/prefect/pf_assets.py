"""Prefect assets: a file materialized by one task and referenced by the next ones, and a table
asset (no bytes). Keys are relative `file://` URLs, under the workflow folder."""

from __future__ import annotations

from pathlib import Path

from lakeline_prefect import flow, materialize, task
from prefect.assets import Asset, AssetProperties, add_asset_metadata

TABLE = Asset(
    key="file://out/table.csv",
    properties=AssetProperties(name="word table", description="one word per row"),
)
WAREHOUSE = "postgres://warehouse/public/words"


@materialize(TABLE)
def tabulate(raw: Path) -> None:
    """Writes the asset's file; returns nothing, so only the asset names the output."""
    words = raw.read_text().split()
    Path("out").mkdir(exist_ok=True)
    Path("out/table.csv").write_text("word\n" + "\n".join(words) + "\n")
    add_asset_metadata(TABLE, {"rows": len(words)})


@materialize(WAREHOUSE, by="pandas")
def load_warehouse(table: None) -> int:
    """A table asset: nothing to hash; its upstream is the file asset."""
    return len(Path("out/table.csv").read_text().splitlines()) - 1


@task(asset_deps=[TABLE])
def peek() -> str:
    """Depends on the file asset without receiving it as a value."""
    return Path("out/table.csv").read_text().splitlines()[1]


@flow
def assets(raw: Path) -> tuple[int, str]:
    """tabulate -> load_warehouse; peek depends on the table asset."""
    done = tabulate.submit(raw)
    return load_warehouse(done), peek(wait_for=[done])
