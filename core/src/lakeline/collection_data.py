"""Reading a collection's data: cache every member (in parallel), load them as one object
(AnnData or DataFrame, concatenated with join rules), open tables as one dataset, or map many
AnnData members as one dataset for training (`mapped.py`).

Every member read is an input of the current run (through `cache()`), so a tracked run that
uses a collection has its members as inputs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from lakeline.errors import IncompatibleMembers, InvalidValue

if TYPE_CHECKING:
    from lakeline.mapped import MappedCollection
    from lakeline.models import Artifact

_OTYPES = {"h5ad": "AnnData", "zarr": "AnnData", "parquet": "DataFrame", "csv": "DataFrame"}
_OTYPES["tsv"] = "DataFrame"


def _otype(artifact: Artifact) -> str | None:
    from lakeline.formats.registry import for_suffix

    fmt = for_suffix(artifact.suffix or "")
    return _OTYPES.get(fmt.name) if fmt is not None else None


def member_otype(members: Sequence[Artifact], wanted: Sequence[str] = ()) -> str:
    """The one kind of object every member loads as (AnnData or DataFrame), else an error."""
    kinds: dict[str | None, Artifact] = {}
    for member in members:
        kinds.setdefault(_otype(member), member)
    if None in kinds:
        odd = kinds[None]
        raise IncompatibleMembers(
            f"member {odd.key} ({odd.suffix or 'no suffix'}) is neither AnnData nor a table: "
            "it cannot be combined with the others"
        )
    if len(kinds) > 1:
        shown = ", ".join(f"{kind} ({a.key})" for kind, a in kinds.items())
        raise IncompatibleMembers(f"the collection mixes {shown}: load the members one by one")
    kind = str(next(iter(kinds)))
    if wanted and kind not in wanted:
        raise IncompatibleMembers(f"this needs {' or '.join(wanted)} members, not {kind}")
    return kind


def cache_members(
    members: Sequence[Artifact], *, progress: bool = True, max_workers: int = 8
) -> list[str]:
    """Local paths of every member, in order; remote ones downloaded in parallel (each
    verified against its hash), with a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lakeline.artifacts.access import cache

    with Progress(
        TextColumn("caching"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        disable=not progress,
    ) as bar:
        task = bar.add_task("cache", total=len(members))

        def one(member: Artifact) -> str:
            path = cache(member, member.instance)
            bar.advance(task)
            return path

        workers = max(1, min(max_workers, len(members)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # each task runs in a copy of this context: the current run stays current
            futures = [pool.submit(contextvars.copy_context().run, one, m) for m in members]
            return [future.result() for future in futures]


def _check_join(join: str) -> None:
    if join not in ("inner", "outer"):
        raise InvalidValue(f"join must be 'inner' or 'outer', not {join!r}")


def load_members(
    members: Sequence[Artifact],
    *,
    join: str = "outer",
    label: str = "artifact_key",
    index_unique: str | None = None,
) -> Any:
    """Every member loaded and concatenated: one AnnData (`anndata.concat`) or DataFrame; the
    column `label` of obs (or of the frame) names each row's member by key."""
    _check_join(join)
    kind = member_otype(members)
    cache_members(members, progress=False)
    keys = [m.key or m.uid for m in members]
    objects = [m.load() for m in members]
    if kind == "DataFrame":
        import pandas as pd

        frames = [df.assign(**{label: key}) for df, key in zip(objects, keys, strict=True)]
        how: Any = join
        return pd.concat(frames, join=how, ignore_index=True)
    import anndata

    if index_unique is None:
        _refuse_duplicate_obs(objects, keys)
    combined = anndata.concat(
        objects, join=join, label=label, keys=keys, index_unique=index_unique, merge="same"
    )
    if combined.n_vars == 0 and join == "inner":
        raise IncompatibleMembers(
            "no variable is shared by all members, so join='inner' leaves none: use join='outer'"
        )
    return combined


def _refuse_duplicate_obs(objects: list[Any], keys: list[str]) -> None:
    owner: dict[str, str] = {}
    for adata, key in zip(objects, keys, strict=True):
        names = adata.obs_names
        if not names.is_unique:
            name = names[names.duplicated()][0]
            raise IncompatibleMembers(
                f"member {key} has duplicate obs names (e.g. {name!r}): make them unique first"
            )
        for name in names:
            if name in owner:
                raise IncompatibleMembers(
                    f"obs name {name!r} is in members {owner[name]} and {key}: pass "
                    "index_unique='-' to suffix each name with its member's key"
                )
            owner[name] = key


def map_members(
    members: Sequence[Artifact],
    *,
    obs_keys: Sequence[str] = (),
    join: str = "inner",
    encode_labels: bool = True,
    dtype: str = "float32",
) -> MappedCollection:
    """A map-style dataset over AnnData members (h5ad or zarr), cached locally first."""
    from lakeline.mapped import MappedCollection

    _check_join(join)
    member_otype(members, wanted=("AnnData",))
    paths = cache_members(members, progress=False)
    return MappedCollection(
        paths,
        [m.key or m.uid for m in members],
        obs_keys=obs_keys,
        join=join,
        encode_labels=encode_labels,
        dtype=dtype,
    )
