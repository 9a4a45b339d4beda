"""The redun workflow of bench/capture.py: `tasks` jobs, each reads one file and writes one."""

from __future__ import annotations

from redun import File, task

redun_namespace = "lakeline_bench"


@task()
def upper(src: File, i: int) -> File:
    out = File(f"out/{i}.txt")
    out.write(src.read().upper())
    return out


@task()
def many(n: int) -> list[File]:
    return [upper(File(f"data/{i}.txt"), i) for i in range(n)]
