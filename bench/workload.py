"""Synthetic catalog rows and query workloads for the benchmark.

Every row is a pure function of its index `i` (keys, suffixes, rare words) plus a seeded
random stream per batch (sizes, hashes, common description words), so a database can be
filled to 100k, measured, then topped up to 1M with the same generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from lakeline.ids import new_stem, versioned_uid
from lakeline.storage.keys import object_key

SEED = 20260101
BATCH = 20_000
TOPS = ("raw", "processed", "results", "reference", "qc")
FILES_PER_SAMPLE = 4
# (file stem, suffix, weight in %): a skewed mix, like a real lake.
KINDS = (
    ("reads", ".fastq.gz", 30),
    ("aligned", ".bam", 15),
    ("counts", ".csv", 15),
    ("table", ".parquet", 10),
    ("variants", ".vcf.gz", 10),
    ("notes", ".txt", 8),
    ("matrix", ".h5ad", 5),
    ("meta", ".json", 7),
)
_KIND_OF_PERCENT = [k for k, (_, _, weight) in enumerate(KINDS) for _ in range(weight)]
# Common description words, drawn with Zipf weights: the first ones are in most rows.
VOCABULARY = (
    "sequencing", "specimen", "tumor", "normal", "rna", "dna", "library", "patient", "cohort",
    "batch", "control", "replicate", "single", "cell", "bulk", "genome", "exome", "assay",
    "pilot", "study", "liver", "lung", "blood", "brain", "kidney", "mouse", "human", "treated",
    "untreated", "timepoint", "baseline", "followup", "filtered", "trimmed", "aligned",
    "deduplicated", "merged", "annotated", "validated", "archived", "draft", "final",
)  # fmt: skip
_CUM_WEIGHTS = list(accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))
RARE_EVERY = 1009  # one row in RARE_EVERY also carries a rare word
_SYLLABLES = ("ba", "ke", "mi", "no", "tu", "ra", "so", "le", "vi", "zu")
N_RARE = 500


def rare_word(k: int) -> str:
    """The k-th rare word: 'q' + three syllables; all the same length, none a prefix of another."""
    return "q" + _SYLLABLES[k // 100 % 10] + _SYLLABLES[k // 10 % 10] + _SYLLABLES[k % 10]


def sample_of(i: int) -> int:
    return i // FILES_PER_SAMPLE


def top_of_sample(sample: int) -> str:
    return TOPS[sample % len(TOPS)]


def kind_of(i: int) -> tuple[str, str]:
    name, suffix, _ = KINDS[_KIND_OF_PERCENT[(i * 7919) % 100]]
    return name, suffix


def key_of(i: int) -> str:
    """The key of row i, e.g. 'raw/sample0001234/reads_4937.fastq.gz'."""
    sample = sample_of(i)
    name, suffix = kind_of(i)
    return f"{top_of_sample(sample)}/sample{sample:07d}/{name}_{i}{suffix}"


def _size(rng: random.Random) -> int:
    """Log-normal sizes: median ~160 kB, a long tail up to many GB."""
    return max(1, int(math.exp(rng.gauss(12.0, 3.0))))


def rows(
    start: int, stop: int, *, storage_id: int, user_id: int, batch: int = BATCH
) -> Iterator[list[dict[str, Any]]]:
    """Rows start..stop-1 of the artifacts table, in batches, every NOT NULL column filled."""
    base_time = datetime(2024, 1, 1, tzinfo=UTC)
    for lo in range(start, stop, batch):
        rng = random.Random(SEED * 1_000_003 + lo)
        out = []
        for i in range(lo, min(lo + batch, stop)):
            stem = new_stem()
            _, suffix = kind_of(i)
            digest = f"{rng.getrandbits(256):064x}"
            words = rng.choices(VOCABULARY, cum_weights=_CUM_WEIGHTS, k=rng.randint(3, 6))
            if i % RARE_EVERY == 0:
                words.append(rare_word(i // RARE_EVERY % N_RARE))
            out.append(
                {
                    "uid": versioned_uid(stem, 0),
                    "stem": stem,
                    "version": None,
                    "is_latest": True,
                    "key": key_of(i),
                    "description": " ".join(words),
                    "suffix": suffix,
                    "kind": None,
                    "otype": None,
                    "size": _size(rng),
                    "hash": digest,
                    "hash_type": "sha256",
                    "n_files": None,
                    "n_observations": None,
                    "storage_id": storage_id,
                    "store_key": object_key(digest, suffix),
                    "in_place": False,
                    "run_id": None,
                    "created_at": base_time + timedelta(seconds=i),
                    "created_by_id": user_id,
                }
            )
        yield out


@dataclass(frozen=True)
class Queries:
    """Distinct parameters for each kind of query, valid for a catalog of n rows."""

    keys: list[str]
    prefixes: list[str]  # ~80 matches each: limit(20) is filled
    narrow_prefixes: list[str]  # ~8 matches each, for count()
    min_sizes: list[int]  # for suffix=".csv", size__gt=N
    rare_words: list[str]  # a handful of matches each
    common_words: list[str]  # in a large share of rows


def queries(n: int, count: int = 50) -> Queries:
    """`count` distinct parameters per query kind, for a catalog filled with rows 0..n-1."""
    rng = random.Random(SEED + n)
    keys = [key_of(i) for i in rng.sample(range(n), count)]
    n_samples = n // FILES_PER_SAMPLE
    prefixes, narrow = [], []
    for sample in rng.sample(range(n_samples), count):
        folder = f"{top_of_sample(sample)}/sample{sample:07d}"
        prefixes.append(folder[:-2])
        narrow.append(folder[:-1])
    min_sizes = [int(10 ** (3 + 6 * j / max(1, count - 1))) for j in range(count)]
    rng.shuffle(min_sizes)
    n_rare = min(N_RARE, max(1, (n - 1) // RARE_EVERY + 1))
    rare = [rare_word(k) for k in rng.sample(range(n_rare), min(count, n_rare))]
    rare = (rare * (count // len(rare) + 1))[:count]
    common = [VOCABULARY[j % 5] for j in range(count)]
    return Queries(keys, prefixes, narrow, min_sizes, rare, common)
