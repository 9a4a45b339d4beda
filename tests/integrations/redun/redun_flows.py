"""Small real redun workflows for the tests (imported by redun by module name)."""

from __future__ import annotations

from redun import File, task

redun_namespace = "llt"


@task()
def split(src: File) -> list[File]:
    text = src.read()
    half = len(text) // 2
    a, b = File("out/a.txt"), File("out/b.txt")
    a.write(text[:half])
    b.write(text[half:])
    return [a, b]


@task()
def count(part: File, label: str = "n") -> File:
    out = File(part.path + ".count")
    out.write(f"{label}={len(part.read().split())}")
    return out


@task()
def merge(counts: list[File]) -> File:
    out = File("out/total.txt")
    out.write(str(sum(int(str(c.read()).split("=")[1]) for c in counts)))
    return out


@task()
def boom(src: File) -> File:
    raise ValueError("boom: bad input")


@task()
def report(total: File) -> File:
    out = File("out/report.txt")
    out.write(f"total {total.read()}\n")
    return out


@task()
def main(src: File, fail: bool = False) -> File:
    parts = split(src)
    counts = [count(parts[0]), count(parts[1], label="m")]
    if fail:
        return boom(src)
    return report(merge(counts))


@task()
def s3_copy(src: File, dest: str) -> File:
    out = File(dest)
    out.write(src.read().upper())
    return out
