"""`Registry.public()`: a public ontology (or gene table) itself, without records.

`PublicOntology` reads its source once (lazily, cached per process) and builds an in-memory
index on first use: ids, names and synonyms (casefolded), and the processed texts rapidfuzz
ranks in `search`. `validate`/`inspect`/`standardize` behave like the registries' (lakeline's
`CanValidate`: the same `InspectResult`, the same synonym resolution), against the source.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lakeline_bio.catalog import PublicSource, find_source
from lakeline_bio.errors import DeprecatedTerm, UnknownTerm

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from lakeline.modules import InspectResult, Snapshot

SEPARATOR = "|"
SUGGEST_SCORE = 80  # search score a close match needs
SUGGEST_LIMIT = 3
SUGGEST_COVERED = 0.5  # or: the share of the value's words a close match must hold
_MAX_HOLDING = 20_000  # texts holding the query's words that search scores at most
_MARKER_POS = re.compile(r"\b(CD\d+\w*)\+")
_MARKER_NEG = re.compile(r"\b(CD\d+\w*)-(?=\W|$)")


def marker_text(value: str) -> str:
    """Cell-type notation as ontologies spell it: "CD14+ Monocyte" -> "CD14-positive Monocyte",
    "CD25-" -> "CD25-negative"."""
    return _MARKER_NEG.sub(r"\1-negative", _MARKER_POS.sub(r"\1-positive", value))


class _Index:
    """Lookups over one source's frame, each built on first use: positions by id and by name
    (current terms), names and synonyms for validation, texts for search."""

    def __init__(self, frame: pd.DataFrame, id_field: str, name_field: str) -> None:
        self.ids = frame[id_field].tolist()
        self.all_names = frame[name_field].tolist()
        self.raw_synonyms = frame["synonyms"].tolist()
        if "deprecated" in frame:
            self.current = (~frame["deprecated"].astype(bool)).tolist()
        else:
            self.current = [True] * len(self.ids)

    @cached_property
    def by_id(self) -> dict[str, int]:
        return {i: n for n, i in enumerate(self.ids) if isinstance(i, str)}

    @cached_property
    def by_name(self) -> dict[str, int]:
        """Current terms' names -> position of the first term of that name."""
        found: dict[str, int] = {}
        for n, (name, ok) in enumerate(zip(self.all_names, self.current, strict=True)):
            if ok and name.__class__ is str and name not in found:
                found[name] = n
        return found

    @cached_property
    def names(self) -> list[str]:
        return list(self.by_name)

    @cached_property
    def synonym_rows(self) -> list[tuple[str, str]]:
        """(name, "|"-joined synonyms) of current terms that have synonyms."""
        rows = []
        for name, synonyms, ok in zip(self.all_names, self.raw_synonyms, self.current, strict=True):
            if not ok or not synonyms or name.__class__ is not str:
                continue
            if synonyms.__class__ is str:  # already joined (a registry's column)
                rows.append((name, synonyms))
                continue
            clean = [s for s in synonyms if s and SEPARATOR not in s]
            if clean:
                rows.append((name, SEPARATOR.join(clean)))
        return rows

    @cached_property
    def texts(self) -> tuple[list[str], list[int]]:
        """(every current name and synonym, the position of the term each belongs to)."""
        texts: list[str] = []
        targets: list[int] = []
        for n, (name, synonyms, ok) in enumerate(
            zip(self.all_names, self.raw_synonyms, self.current, strict=True)
        ):
            if not ok or name.__class__ is not str:
                continue
            texts.append(name)
            targets.append(n)
            synonyms = synonyms.split(SEPARATOR) if synonyms.__class__ is str else synonyms or []
            clean = [s for s in synonyms if s and SEPARATOR not in s]
            texts.extend(clean)
            targets.extend([n] * len(clean))
        return texts, targets

    @cached_property
    def processed(self) -> list[str]:
        """The texts as search compares them (lowercased, punctuation-free)."""
        from rapidfuzz import utils

        return [utils.default_process(t) for t in self.texts[0]]

    @cached_property
    def blob(self) -> tuple[str, Any]:
        """The processed texts joined by newlines, and where each starts (for substring scans
        in C instead of a Python loop per text)."""
        import numpy as np

        lengths = np.fromiter(map(len, self.processed), dtype=np.int64, count=len(self.processed))
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        return "\n".join(self.processed), starts

    def holding(self, words: set[str]) -> list[int]:
        """Positions of the processed texts that contain every word (as a substring)."""
        import numpy as np

        text, starts = self.blob
        found: Any = None
        for word in words:
            offsets = [m.start() for m in re.finditer(re.escape(word), text)]
            hit = np.unique(
                np.searchsorted(starts, np.asarray(offsets, dtype=np.int64), "right") - 1
            )
            found = hit if found is None else np.intersect1d(found, hit, assume_unique=True)
            if not len(found):
                break
        return [] if found is None else found.tolist()


class PublicOntology:
    """One public source of a registry, searchable and usable for validation, offline.

    `field` names the text field values are matched against (`name`; genes: `symbol`);
    `id_field` the identifier (`ontology_id`; genes: `ensembl_gene_id`).
    """

    def __init__(self, entity: str, source: PublicSource | None) -> None:
        self.entity = entity
        self.source = source
        genes = entity == "Gene"
        self.id_field = "ensembl_gene_id" if genes else "ontology_id"
        self.name_field = "symbol" if genes else "name"
        self._frame: pd.DataFrame | None = None
        self._key = "" if source is None else source.key

    @classmethod
    def from_frame(cls, entity: str, frame: pd.DataFrame, key: str) -> PublicOntology:
        """The same lookups over a frame of records (e.g. a registry's genes of one organism)."""
        made = cls(entity, None)
        made._frame = frame
        made._key = key
        return made

    @classmethod
    def of(
        cls,
        entity: str,
        ontology: str | None = None,
        version: str | None = None,
        organism: str | None = None,
    ) -> PublicOntology:
        return cls(
            entity, find_source(entity, ontology=ontology, version=version, organism=organism)
        )

    def __repr__(self) -> str:
        origin = "" if self.source is None else f", {self.source.origin}"
        return f"PublicOntology({self.entity}: {self._key}{origin})"

    @property
    def key(self) -> str:
        """The release's key ("CL/v2026-03-26"), or what the frame holds."""
        return self._key

    @property
    def frame(self) -> pd.DataFrame:
        """All terms (genes) of the source, deprecated ones included (shared: do not modify)."""
        if self._frame is not None:
            return self._frame
        assert self.source is not None
        return self.source.read()

    def to_dataframe(self) -> pd.DataFrame:
        """A copy of the source's terms, indexed by id."""
        return self.frame.set_index(self.id_field)

    @cached_property
    def _index(self) -> _Index:
        return _Index(self.frame, self.id_field, self.name_field)

    def __len__(self) -> int:
        return len(self.frame)

    # -- lookups ---------------------------------------------------------------------------

    def get(self, ontology_id: str) -> dict[str, Any]:
        """The term (gene) with this id, as a dict; UnknownTerm if the source has none."""
        position = self._index.by_id.get(ontology_id)
        if position is None:
            raise UnknownTerm(
                f"{self.entity}: {ontology_id!r} is not in {self._key}"
                f"{self._close_ids(ontology_id)}"
            )
        row: dict[str, Any] = {str(k): v for k, v in self.frame.iloc[position].to_dict().items()}
        return row

    def current(self, ontology_id: str) -> dict[str, Any]:
        """`get`, refusing a deprecated term (DeprecatedTerm naming its replacement)."""
        row = self.get(ontology_id)
        if row.get("deprecated"):
            replaced = row.get("replaced_by")
            hint = f"; replaced by {replaced}" if replaced else "; no replacement given"
            raise DeprecatedTerm(
                f"{self.entity}: {ontology_id} ({row[self.name_field]!r}) is deprecated in "
                f"{self._key}{hint}"
            )
        return row

    def _close_ids(self, ontology_id: str) -> str:
        prefix = ontology_id.split(":")[0] if ":" in ontology_id else ""
        sample = next(iter(self._index.by_id), "")
        if prefix and not sample.startswith(prefix + ":"):
            return f" (its ids look like {sample!r})"
        return ""

    def parents(self, ontology_id: str) -> list[str]:
        """Direct is_a parents' ids."""
        return list(self.get(ontology_id).get("parents") or [])

    def ancestors(self, ontology_id: str) -> list[str]:
        """All is_a ancestors' ids, nearest first."""
        seen: dict[str, None] = {}
        todo = self.parents(ontology_id)
        while todo:
            term = todo.pop(0)
            if term in seen or term not in self._index.by_id:
                continue
            seen[term] = None
            todo.extend(self.parents(term))
        return list(seen)

    def ids_of(self, names: list[str]) -> dict[str, str]:
        """{name: id} for the names (current terms' exact names) the source holds."""
        frame_ids = self.frame[self.id_field]
        return {
            n: str(frame_ids.iat[self._index.by_name[n]]) for n in names if n in self._index.by_name
        }

    # -- search ----------------------------------------------------------------------------

    def search(self, query: str, limit: int = 10) -> pd.DataFrame:
        """Current terms ranked by how well their name or a synonym matches `query`, best
        first: an exact match (ignoring case), then the share of the query's words a text
        holds (`covered`), then rapidfuzz's WRatio on lowercased, punctuation-free text
        (`score`), shorter texts first."""
        import pandas as pd
        from rapidfuzz import fuzz, process, utils

        index = self._index
        processed = index.processed
        wanted = utils.default_process(query)
        words = set(wanted.split())
        # candidates: texts holding every word of the query, and the closest texts overall
        # (QRatio: one C pass); only they are scored with the costlier WRatio
        holding = index.holding(words)
        close = process.extract(
            wanted,
            processed,
            scorer=fuzz.QRatio,
            processor=None,
            limit=max(200, limit * 20),
            score_cutoff=50,
        )
        candidates = list(dict.fromkeys([c[2] for c in close] + holding[:_MAX_HOLDING]))
        scorer = fuzz.WRatio
        hits = [(scorer(wanted, processed[i], processor=None), i) for i in candidates]
        names = self.frame[self.name_field]
        texts, targets = index.texts
        scored: dict[int, tuple[tuple[float, ...], str, float]] = {}  # rank, text, score
        for score, position in hits:
            if score < 50:
                continue
            text = processed[position]
            target = targets[position]
            covered = len(words & set(text.split())) / len(words) if words else 0.0
            is_name = texts[position] == names.iat[target]
            rank = (float(text == wanted), covered, float(score), float(is_name), -len(text))
            if target not in scored or rank > scored[target][0]:
                scored[target] = (rank, texts[position], 100.0 if text == wanted else score)
        best = sorted(scored.items(), key=lambda item: item[1][0], reverse=True)[:limit]
        rows = self.frame.iloc[[t for t, _ in best]]
        return pd.DataFrame(
            {
                self.id_field: rows[self.id_field].to_numpy(),
                self.name_field: rows[self.name_field].to_numpy(),
                "matched": [text for _, (_, text, _) in best],
                "score": [round(score, 1) for _, (_, _, score) in best],
                "covered": [round(rank[1], 2) for _, (rank, _, _) in best],
            }
        )

    # -- validation ------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        from lakeline.modules import Snapshot

        return Snapshot(self._index.names, self._index.synonym_rows)

    def _distinct(self, values: Any, field: str | None) -> tuple[Any, str]:
        from types import SimpleNamespace

        from lakeline.modules import distinct

        field = field or self.name_field
        model = type(self.entity, (), {})
        return distinct(model, SimpleNamespace(name=field), values), field  # type: ignore[arg-type]

    def _found(self, uniques: list[str], field: str) -> set[str]:
        if field == self.name_field:
            known: Any = self._index.by_name
        elif field == self.id_field:
            known = self._index.by_id
        else:
            known = set(self.frame[field].dropna())
        return {v for v in uniques if v in known}

    def validate(
        self, values: Any, field: str | None = None, *, mute: bool = False
    ) -> npt.NDArray[np.bool_]:
        """One bool per value: is it a current term's name (or `field`)?"""
        values_, field = self._distinct(values, field)
        found = self._found(values_.uniques, field)
        result: npt.NDArray[np.bool_] = values_.member(found)
        if not mute and not result.all():
            import logging

            from lakeline.modules import summary_line

            missing = sorted(v for v in values_.uniques if v not in found)
            logging.getLogger("lakeline.validation").warning(
                summary_line(self._label(field), len(result), missing, int((~result).sum()))
            )
        return result

    def inspect(
        self, values: Any, field: str | None = None, *, mute: bool = False
    ) -> InspectResult:
        """Validated values, synonyms (and case variants) of names, close matches for the rest."""
        values_, field = self._distinct(values, field)
        found = self._found(values_.uniques, field)
        missing = [v for v in values_.uniques if v not in found]
        snapshot = self._snapshot()
        mapper: dict[str, str] = {}
        case_only: set[str] = set()
        if missing and field == self.name_field:
            hits, case_only = snapshot.resolve(missing, case_sensitive=False)
            mapper = {v: hits[v][0] for v in missing if v in hits}
        result = _PublicInspectResult(
            self,
            self._label(field),
            values_.size,
            [v for v in values_.uniques if v in found],
            missing,
            mapper,
            case_only,
            snapshot if field == self.name_field else None,
        )
        if not mute:
            result.print()
        return result

    def standardize(
        self,
        values: Any,
        *,
        case_sensitive: bool = False,
        return_mapper: bool = False,
    ) -> list[Any] | dict[str, str]:
        """The values with synonyms (and, unless `case_sensitive`, case variants) replaced by
        the current name they stand for; others kept. A synonym of several terms maps to the
        first in the source's order."""
        values_, field = self._distinct(values, None)
        found = self._found(values_.uniques, field)
        missing = [v for v in values_.uniques if v not in found]
        mapper: dict[str, str] = {}
        if missing:
            hits, _ = self._snapshot().resolve(missing, case_sensitive=case_sensitive)
            mapper = {v: hits[v][0] for v in missing if v in hits}
        if return_mapper:
            return mapper
        replaced: list[Any] = values_.replace(mapper)
        return replaced

    def _label(self, field: str) -> str:
        where = f"public({self._key})" if self.source is not None else f"({self._key})"
        return f"{self.entity}.{where}.{field}"


def _inspect_result_class() -> type[InspectResult]:
    from lakeline.modules import InspectResult

    return InspectResult


class _PublicInspectResult(_inspect_result_class()):  # type: ignore[misc]
    """An InspectResult whose close matches for ontology terms come from the ontology's search
    ranking (every word of the value covered first), after reading marker notation ("CD14+");
    gene symbols keep core's close matches (edit distance, batched)."""

    def __init__(self, public: PublicOntology, *args: Any) -> None:
        super().__init__(*args)
        self._public = public

    def _suggest(self, values: Any) -> dict[str, list[str]]:
        if self._public.entity == "Gene":  # symbols: core's batched edit-distance matches
            return super()._suggest(values)  # type: ignore[no-any-return]
        todo = [v for v in values if v not in self._suggested]
        if todo and self._snapshot is not None:
            for value in todo:
                hits = self._public.search(marker_text(value), limit=SUGGEST_LIMIT)
                good = hits[(hits["score"] >= SUGGEST_SCORE) | (hits["covered"] >= SUGGEST_COVERED)]
                self._suggested[value] = good[self._public.name_field].tolist()
        return {v: self._suggested.get(v, []) for v in values}


def suggesting(result: InspectResult, entity: str) -> InspectResult:
    """A registry's InspectResult whose close matches come from search over the registry's
    own names and synonyms (its snapshot), as the public ontologies' do."""
    import pandas as pd

    snapshot = result._snapshot
    if snapshot is None or result.__class__ is not _inspect_result_class():
        return result
    synonyms: dict[str, str] = {}
    for name, text in snapshot.synonym_rows:
        synonyms.setdefault(name, text)
    names = list(dict.fromkeys(snapshot.names))
    frame = pd.DataFrame(
        {"ontology_id": names, "name": names, "synonyms": [synonyms.get(n) for n in names]}
    )
    result.__class__ = _PublicInspectResult
    result._public = PublicOntology.from_frame(entity, frame, "records")  # type: ignore[attr-defined]
    return result


def records_frame(rows: list[Any]) -> pd.DataFrame:
    """(Ensembl id, symbol, "|"-joined synonyms) rows of a gene registry as a lookup frame."""
    import pandas as pd

    return pd.DataFrame(
        {
            "ensembl_gene_id": [r[0] for r in rows],
            "symbol": [r[1] for r in rows],
            "synonyms": [r[2] for r in rows],  # "|"-joined, as the column holds them
        }
    )
