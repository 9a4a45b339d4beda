"""A map-style dataset over many AnnData artifacts (h5ad or zarr), read row by row.

`MappedCollection` is what `Collection.mapped()` returns: `len(ds)` is the number of
observations of all members, `ds[i]` a dict with `X` (one dense row over the joined variables)
and one entry per obs key (an integer code when labels are encoded). Nothing but the rows asked
for is read: each member's X is opened lazily (h5py for h5ad, zarr for zarr folders), one
handle per member per process, so a PyTorch DataLoader with `num_workers > 0` opens its own
handles in each worker (handles are dropped when pickled and reopened after a fork). Memory
holds only the variable maps and the obs labels, whatever the number of rows read. lakeline
itself never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from lakeline.errors import IncompatibleMembers, InvalidValue
from lakeline.formats.registry import require

JOINS = ("inner", "outer")


def _open_store(path: str) -> Any:
    if path.rstrip("/").endswith(".zarr"):
        return require("zarr", "anndata").open_group(path, mode="r")
    return require("h5py", "hdf5").File(path, "r")


def _read_elem(elem: Any) -> Any:
    return require("anndata", "anndata").io.read_elem(elem)


def _index(group: Any) -> list[str]:
    name = group.attrs.get("_index", "_index")
    return [str(v) for v in _read_elem(group[name])]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _encoding(x: Any) -> str:
    """`csr_matrix`, `csc_matrix` or `array` (h5ad files older than anndata 0.7 included)."""
    if "encoding-type" in x.attrs:
        return _text(x.attrs["encoding-type"])
    if "h5sparse_format" in x.attrs:
        return f"{_text(x.attrs['h5sparse_format'])}_matrix"
    return "array"


def _sparse_shape(x: Any) -> Any:
    return x.attrs["shape"] if "shape" in x.attrs else x.attrs["h5sparse_shape"]


def _metadata(path: str, key: str, obs_keys: list[str]) -> tuple[int, list[str], list[Any]]:
    """(n_obs, var names, obs label columns) of one member, without reading X. h5ad goes
    through anndata's backed mode (which knows every h5ad layout), zarr through its groups."""
    import numpy as np

    anndata = require("anndata", "anndata")
    if path.rstrip("/").endswith(".zarr"):
        store = _open_store(path)
        obs = store["obs"]
        columns = {k: obs[k] for k in obs_keys if k in obs}
        names = [k for k in obs if not k.startswith("_")]
        n_obs, var_names = len(_index(obs)), _index(store["var"])

        def read(k: str) -> Any:
            return np.asarray(_read_elem(columns[k]))

    else:
        adata = anndata.read_h5ad(path, backed="r")
        adata.file.close()
        names = list(adata.obs.columns)
        n_obs, var_names = adata.n_obs, [str(v) for v in adata.var_names]

        def read(k: str) -> Any:
            return np.asarray(adata.obs[k])

    for obs_key in obs_keys:
        if obs_key not in names:
            raise IncompatibleMembers(
                f"member {key} has no obs column {obs_key!r} (it has {sorted(names)})"
            )
    return n_obs, var_names, [read(k) for k in obs_keys]


class MappedCollection:
    """Rows of many AnnData stores as one map-style dataset (see the module docstring)."""

    def __init__(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        *,
        obs_keys: Sequence[str] = (),
        join: str = "inner",
        encode_labels: bool = True,
        dtype: str = "float32",
    ) -> None:
        import numpy as np

        if join not in JOINS:
            raise InvalidValue(f"join must be 'inner' or 'outer', not {join!r}")
        if isinstance(obs_keys, str):
            obs_keys = [obs_keys]
        self.paths, self.keys = list(paths), list(keys)
        self.obs_keys, self.join, self.dtype = list(obs_keys), join, np.dtype(dtype)
        self.encode_labels = encode_labels
        var_lists: list[list[str]] = []
        sizes: list[int] = []
        raw_labels: dict[str, list[Any]] = {k: [] for k in self.obs_keys}
        for path, key in zip(self.paths, self.keys, strict=True):
            n_obs, var_names, labels = _metadata(path, key, self.obs_keys)
            sizes.append(n_obs)
            var_lists.append(var_names)
            for obs_key, values in zip(self.obs_keys, labels, strict=True):
                raw_labels[obs_key].append(values)
        self.var_names = _joined(var_lists, join, self.keys)
        position = {name: i for i, name in enumerate(self.var_names)}
        self._maps: list[tuple[Any, Any] | None] = []
        for names in var_lists:
            if names == self.var_names:
                self._maps.append(None)  # same variables in the same order: no mapping
                continue
            src = [i for i, name in enumerate(names) if name in position]
            dst = [position[names[i]] for i in src]
            self._maps.append((np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)))
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.encoders: dict[str, dict[Any, int]] = {}
        self._labels: dict[str, list[Any]] = {}
        for obs_key, arrays in raw_labels.items():
            if encode_labels:
                categories = sorted({str(v) for a in arrays for v in a})
                encoder = {c: i for i, c in enumerate(categories)}
                self.encoders[obs_key] = encoder
                self._labels[obs_key] = [
                    np.fromiter((encoder[str(v)] for v in a), dtype=np.int64, count=len(a))
                    for a in arrays
                ]
            else:
                self._labels[obs_key] = arrays
        self._handles: dict[int, _Handle] = {}
        self._pid = os.getpid()

    # -- the dataset protocol ------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), len(self.var_names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import numpy as np

        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for {n} observations")
        member = int(np.searchsorted(self.offsets, i, side="right")) - 1
        row = i - int(self.offsets[member])
        values = self._row(member, row)
        mapping = self._maps[member]
        if mapping is None:
            out = values.astype(self.dtype, copy=False)
        else:
            out = np.zeros(len(self.var_names), dtype=self.dtype)
            out[mapping[1]] = values[mapping[0]]
        item: dict[str, Any] = {"X": out}
        for obs_key, labels in self._labels.items():
            item[obs_key] = labels[member][row]
        return item

    def _row(self, member: int, row: int) -> Any:
        import numpy as np

        handle = self._handle(member)
        if handle.indptr is None:
            return np.asarray(handle.x[row])
        start, end = (int(v) for v in handle.indptr[row : row + 2])
        dense = np.zeros(handle.n_vars, dtype=self.dtype)
        if end > start:
            dense[np.asarray(handle.indices[start:end])] = handle.data[start:end]
        return dense

    # -- handles, one set per process ----------------------------------------------------------

    def _handle(self, member: int) -> _Handle:
        if self._pid != os.getpid():  # a forked worker: never use the parent's handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(member)
        if handle is None:
            handle = self._handles[member] = _Handle(self.paths[member], self.keys[member])
        return handle

    def close(self) -> None:
        """Close the handles this process opened (reading again reopens them)."""
        if self._pid == os.getpid():
            for handle in self._handles.values():
                handle.close()
        self._handles = {}

    def __enter__(self) -> MappedCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def __repr__(self) -> str:
        n, m = self.shape
        return f"MappedCollection({n} observations x {m} variables, {len(self.paths)} members)"


class _Handle:
    """One member's open store and its X parts, looked up once (h5py/zarr lookups and
    attribute reads cost more than reading a row)."""

    def __init__(self, path: str, key: str) -> None:
        self.store = _open_store(path)
        self.x = self.store["X"]
        encoding = _encoding(self.x)
        if encoding == "csc_matrix":
            self.close()
            raise IncompatibleMembers(
                f"member {key} stores X as CSC: reading a row would read the whole matrix; "
                "save it as CSR or dense"
            )
        self.indptr: Any = None
        self.indices: Any = None
        self.data: Any = None
        if encoding == "csr_matrix":
            self.indptr, self.indices, self.data = (
                self.x[k] for k in ("indptr", "indices", "data")
            )
            self.n_vars = int(_sparse_shape(self.x)[1])
        else:
            self.n_vars = int(self.x.shape[1])

    def close(self) -> None:
        if hasattr(self.store, "close"):
            self.store.close()


def _joined(var_lists: list[list[str]], join: str, keys: list[str]) -> list[str]:
    """The variables of an inner (shared by all, first member's order) or outer join."""
    for names, key in zip(var_lists, keys, strict=True):
        if len(set(names)) != len(names):
            raise IncompatibleMembers(f"member {key} has duplicate variable names")
    if join == "inner":
        shared = set(var_lists[0]).intersection(*var_lists[1:])
        if not shared:
            raise IncompatibleMembers(
                f"no variable is shared by all {len(keys)} members, so join='inner' leaves "
                "none: use join='outer'"
            )
        return [name for name in var_lists[0] if name in shared]
    seen: dict[str, None] = {}
    for names in var_lists:
        seen.update(dict.fromkeys(names))
    return list(seen)
