"""Small real redun workflows for the tests (imported by redun by module name)."""

from __future__ import annotations

from redun import Dir, File, task

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


@task()
def make(target: str) -> File:
    """A make-like rule for a source file: nothing to build, the file is returned as it is."""
    return File(target)


@task()
def shout(src: File) -> File:
    out = File("out/shout.txt")
    out.write(src.read().upper())
    return out


@task()
def build(target: str) -> File:
    """make (a source) -> shout."""
    return shout(make(target))


@task(prov=False)
def untracked(n: int) -> int:
    """redun keeps no record of this job."""
    return n + 1


@task()
def word_count(src: File) -> File:
    """Counts words with `wc`: its output is the command's standard output, `File("-")`."""
    from redun import script

    return script(f"wc -w < {src.path}", inputs=[src.stage(src.path)], outputs=File("-"))


@task()
def quiet_words(src: File) -> list:
    return [untracked(1), untracked(2), word_count(src)]


@task()
def passed_on(src: File) -> File:
    return src


@task()
def late_count(src: File) -> File:
    """Calls `count` only after another job: its `count` starts after `early_count`'s."""
    return count(passed_on(src))


@task()
def early_count(src: File) -> File:
    return count(src)


@task()
def twice(src: File) -> list[File]:
    """The same `count` call in two branches: the later one is a cache hit of the earlier,
    though its branch comes first in the job tree."""
    return [late_count(src), early_count(src)]


@task()
def quick(src: File) -> File:
    out = File("out/quick.txt")
    out.write(src.read())
    return out


@task(cache=False)
def held(src: File, release: str) -> File:
    """Runs until the file `release` appears (the test that runs it lets it end)."""
    import os
    import time

    while not os.path.exists(release):
        time.sleep(0.1)
    out = File("out/held.txt")
    out.write(src.read())
    return out


@task()
def quick_then_held(src: File, release: str) -> File:
    return held(quick(src), release)


@task()
def describe_record(artifact: object, note: str = "") -> str:
    """Takes a lakeline record: redun hashes its arguments and stores them pickled."""
    return f"{artifact.key}={artifact.load()}{note}"  # type: ignore[attr-defined]


@task()
def shards(src: File) -> Dir:
    """Writes a folder of two files and returns it as a redun Dir."""
    import os

    os.makedirs("out/shards", exist_ok=True)
    for i, word in enumerate(src.read().split()[:2]):
        File(f"out/shards/{i}.txt").write(word)
    return Dir("out/shards")


@task()
def tally(folder: Dir, extra: int = 1) -> File:
    out = File("out/tally.txt")
    out.write(str(len(list(folder)) + extra))
    return out


@task()
def sharded(src: File) -> File:
    return tally(shards(src))


@task()
def rewrite(done: File, path: str) -> File:
    """Rewrites `path` (after the job that made `done` read it)."""
    out = File(path)
    out.write("rewritten after the job that read it")
    return out


@task()
def read_then_rewrite(src: File) -> File:
    return rewrite(quick(src), src.path)


@task()
def scribble(done: File, path: str) -> str:
    """Overwrites the start of file `path` in place, after `done`: the same size, and its
    folder's entries (so the folder's own stat) unchanged."""
    with open(path, "r+b") as f:
        f.write(b"ZZ")
    return path


@task()
def tally_then_scribble(src: File) -> str:
    return scribble(tally(shards(src)), "out/shards/0.txt")


@task()
def s3_scribble(done: File, url: str) -> str:
    """Overwrites the object `url` (after `done`)."""
    File(url).write("overwritten after the job that read it\n")
    return url


@task()
def s3_copy_then_scribble(src: File, dest: str) -> str:
    return s3_scribble(s3_copy(src, dest), src.path)


DOOM: list = []  # set by a test: run inside `doomed`'s body (deletes its run)


@task()
def doomed(n: int) -> int:
    DOOM[0]()
    return n + 1


@task()
def kept(n: int) -> int:
    return n * 2


@task()
def main_doomed(n: int = 1) -> list[int]:
    return [doomed(n), kept(n)]
