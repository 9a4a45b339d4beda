"""Snakemake's special files, run for real with `--logger lakeline` (SQLite and PostgreSQL):
pipes, symlinked outputs, update() outputs, temp() outputs once deleted, and a `.snakemake/`
folder the plugin must not walk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import ArtifactUnavailable
from lakeline.instance import Instance
from smk_testkit import Step, ordered, run_snakemake, steps, write_workflow
from snakemake_logger_plugin_lakeline.importer import import_workflow

PIPE = """
rule all:
    input: "out.txt"

rule produce:
    output: pipe("stream.txt")
    shell: "seq 1 1000 > {output}"

rule consume:
    input: "stream.txt"
    output: "out.txt"
    shell: "wc -l < {input} > {output}"
"""


def test_pipe_is_not_a_file_and_the_run_ends(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", PIPE)
    # the plugin used to open the FIFO to hash it: blocked forever, Snakemake never exited
    result = run_snakemake(root, cores=2, timeout=180)
    assert (root / "out.txt").read_text().strip() == "1000"
    assert steps() == [
        Step("all", frozenset({"out.txt"})),
        Step("consume", outputs=frozenset({"out.txt"})),
        Step("produce"),
    ]
    lines = [line for line in result.stderr.splitlines() if line.startswith("lakeline")]
    assert lines == [lines[0]] and "lakeline: recorded 3 jobs" in lines[0]  # nothing "gone"
    assert ll.Artifact.filter(key="stream.txt").count() == 0


OUTSIDE = "outside"  # a folder next to the workflow's: data the workflow links to

SYMLINKS = f"""
rule all:
    input: "use.txt", "prot.txt", "shadowed.txt", "bundle"

rule target:
    output: "real/data.txt"
    shell: "echo data > {{output}}"

rule link:
    input: "real/data.txt"
    output: "link.txt"
    shell: "ln -s real/data.txt {{output}}"

rule linkdir:
    output: directory("linkdir")
    shell: "mkdir -p realdir && echo x > realdir/x.txt && ln -s realdir {{output}}"

rule external:
    output: "genome.fa", directory("refdir")
    shell: "ln -s ../{OUTSIDE}/genome.fa {{output[0]}}; ln -s ../{OUTSIDE}/refdir {{output[1]}}"

rule bundle:
    input: "real/data.txt"
    output: directory("bundle")
    shell: "mkdir bundle; ln -s ../../{OUTSIDE}/refdir bundle/refdir; ln -s ../{{input}} bundle/"

rule prot:
    input: "real/data.txt"
    output: protected("prot.txt")
    shell: "ln -s real/data.txt {{output}}"

rule shadowed:
    input: "real/data.txt"
    output: "shadowed.txt"
    shadow: "full"
    shell: "ln -s {{input}} {{output}}"

rule use:
    input: "link.txt", "linkdir", "genome.fa", "refdir"
    output: "use.txt"
    shell: "cat {{input[0]}} {{input[1]}}/x.txt {{input[2]}} {{input[3]}}/y.txt > {{output}}"
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_symlinked_outputs_are_recorded_under_their_own_path(
    instance: Instance, tmp_path: Path
) -> None:
    outside = tmp_path / OUTSIDE
    (outside / "refdir").mkdir(parents=True)
    (outside / "genome.fa").write_text(">chr1\nACGT\n")
    (outside / "refdir" / "y.txt").write_text("y\n")
    root = write_workflow(tmp_path / "wf", SYMLINKS)
    run_snakemake(root, cores=2)
    assert (root / "link.txt").is_symlink() and (root / "linkdir").is_symlink()
    data = frozenset({"real/data.txt"})
    assert steps() == ordered(
        [
            Step("all", frozenset({"use.txt", "prot.txt", "shadowed.txt", "bundle"})),
            Step("bundle", data, frozenset({"bundle"})),
            Step("external", outputs=frozenset({"genome.fa", "refdir"})),
            Step("link", data, frozenset({"link.txt"})),
            Step("linkdir", outputs=frozenset({"linkdir"})),
            Step("prot", data, frozenset({"prot.txt"})),
            Step("shadowed", data, frozenset({"shadowed.txt"})),
            Step("target", outputs=data),
            Step(
                "use",
                frozenset({"link.txt", "linkdir", "genome.fa", "refdir"}),
                frozenset({"use.txt"}),
            ),
        ]
    )
    # a link holds its target's bytes (read through the link), its producer is the rule
    # that made the link, and the target keeps its own record and producer
    link, target = ll.Artifact.get(key="link.txt"), ll.Artifact.get(key="real/data.txt")
    assert link.hash == target.hash and Path(link.cache()).read_text() == "data\n"
    assert link.run is not None and link.run.transform.key == "link"
    assert target.run is not None and target.run.transform.key == "target"
    assert ll.Artifact.get(key="linkdir").n_files == 1  # realdir/x.txt, not "folder is empty"
    genome = ll.Artifact.get(key="genome.fa")
    assert Path(genome.cache()).read_text() == ">chr1\nACGT\n"
    assert genome.hash == _sha256(outside / "genome.fa")
    assert ll.Artifact.get(key="refdir").n_files == 1
    # a folder of links (to a folder, to a file) holds what they point to
    assert ll.Artifact.get(key="bundle").n_files == 3  # and .snakemake_timestamp


SHARED = """
rule all:
    input: "out/fromlink.txt", "out/viadir.txt"

rule mklink:
    input: "data/raw.txt"
    output: "out/link.txt"
    shell: "ln -s ../data/raw.txt {output}"

rule fromlink:
    input: "out/link.txt"
    output: "out/fromlink.txt"
    shell: "cat {input} > {output}"

rule viadir:
    input: "datalink/raw.txt", "out/fromlink.txt"
    output: "out/viadir.txt"
    shell: "cat {input[0]} > {output}"

rule onlylink:
    input: "out/link.txt"
    output: "out/onlylink.txt"
    shell: "cat {input} > {output}"

rule late:
    input: "out/onlylink.txt", "data/raw.txt"
    output: "out/late.txt"
    shell: "cat {input} > {output}"
"""


def test_a_file_two_links_point_to_is_used_under_its_own_path(
    instance: Instance, tmp_path: Path
) -> None:
    """`data/raw.txt`, a link output made by a rule to it (`out/link.txt`) and a path through
    a linked folder (`datalink/raw.txt`) are one place with three records: a later run's
    jobs reading plain `data/raw.txt` use its own record (no producer), not whichever link's
    record was saved last (a false edge to the rule that made the link). Failed before the
    fix: `late`'s was `datalink/raw.txt`, or `out/link.txt` (the one record of that place the
    Recorder remembered, once `onlylink` used it)."""
    root = write_workflow(tmp_path / "wf", SHARED, {"data/raw.txt": "raw\n"})
    (root / "datalink").symlink_to(root / "data")
    run_snakemake(root, cores=1)
    (raw,) = ll.Run.get(engine="snakemake", transform__key="mklink").inputs
    assert raw.key == "data/raw.txt" and raw.run_id is None
    assert ll.Artifact.get(key="out/link.txt").hash == raw.hash  # one place, its own record
    assert ll.Artifact.get(key="datalink/raw.txt").hash == raw.hash
    run_snakemake(root, "--printshellcmds", "out/late.txt", cores=1)  # onlylink, then late
    late = ll.Run.get(engine="snakemake", transform__key="late")
    used = sorted((a.key, a.uid, a.run_id) for a in late.inputs)
    made = ll.Artifact.get(key="out/onlylink.txt")
    assert used == [("data/raw.txt", raw.uid, None), ("out/onlylink.txt", made.uid, made.run_id)]


UNDECLARED = """
rule mklink:
    output: "out/link.txt"
    shell: "ln -s ../data/raw.txt {output}"

rule late:
    input: "data/raw.txt"
    output: "out/late.txt"
    shell: "cat {input} > {output}"
"""


def test_a_link_target_never_recorded_is_not_the_output_of_the_rule_that_linked_it(
    instance: Instance, tmp_path: Path
) -> None:
    """A rule links to a file it does not declare (`ln -s` to a reference): the target is
    never recorded before a later job reads it. That job's input is a record of the file
    itself, not the link's (produced by `mklink`: a false "used the output of mklink")."""
    root = write_workflow(tmp_path / "wf", UNDECLARED, {"data/raw.txt": "raw\n"})
    run_snakemake(root, "--printshellcmds", "out/link.txt", cores=1)
    link = ll.Artifact.get(key="out/link.txt")
    assert link.run_id == ll.Run.get(engine="snakemake", transform__key="mklink").id
    run_snakemake(root, "--printshellcmds", "out/late.txt", cores=1)
    (used,) = ll.Run.get(engine="snakemake", transform__key="late").inputs
    assert (used.key, used.run_id) == ("data/raw.txt", None)
    assert used.hash == link.hash


UPDATE = """
rule all:
    input: "db.txt.done"

rule read:
    input: "db.txt"
    output: "summary.txt"
    shell: "cp {input} {output}"

rule append:
    input: "summary.txt"
    output: update("db.txt"), touch("db.txt.done")
    shell: "echo v2 >> {output[0]}"
"""


def test_update_output_keeps_both_versions(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", UPDATE, {"db.txt": "v1\n"})
    run_snakemake(root, cores=1)
    assert (root / "db.txt").read_text() == "v1\nv2\n"
    assert steps() == [
        Step("all", frozenset({"db.txt.done"})),
        Step("append", frozenset({"summary.txt"}), frozenset({"db.txt", "db.txt.done"})),
        Step("read", frozenset({"db.txt"}), frozenset({"summary.txt"})),
    ]
    versions = list(ll.Artifact.filter(key="db.txt", is_latest=None).order_by("uid"))
    assert len(versions) == 2
    old, new = versions
    read = ll.Run.get(engine="snakemake", transform__key="read")
    append = ll.Run.get(engine="snakemake", transform__key="append")
    assert [a.uid for a in read.inputs] == [old.uid]  # the content it read
    assert old.run_id is None and old.hash == hashlib.sha256(b"v1\n").hexdigest()
    assert new.run_id == append.id and new.hash == _sha256(root / "db.txt")


TEMP = """
rule all:
    input: "final.txt"

rule make:
    output: temp("tmp/{x}.txt")
    shell: "echo {wildcards.x} > {output}"

rule use:
    input: "tmp/a.txt", "tmp/b.txt"
    output: "final.txt"
    shell: "cat {input} > {output}"
"""


def test_temp_outputs_deleted_by_snakemake_are_unavailable(
    instance: Instance, tmp_path: Path
) -> None:
    root = write_workflow(tmp_path / "wf", TEMP)
    run_snakemake(root, cores=2)
    assert not (root / "tmp" / "a.txt").exists()  # Snakemake deleted it
    temp = ll.Artifact.get(key="tmp/a.txt")
    assert temp.kind == "transient" and temp.available is False
    assert temp.hash == hashlib.sha256(b"a\n").hexdigest()  # hashed while it existed
    assert temp.run is not None and temp.run.transform.key == "make"
    with pytest.raises(ArtifactUnavailable, match=r"deleted by the workflow \(temp\)"):
        temp.load()
    assert ll.Artifact.get(key="final.txt").available is True
    # the import of the same run agrees
    import_workflow(root)
    assert ll.Artifact.get(key="tmp/b.txt").available is False
    # a re-run makes the same bytes again: the record is filled in, then deleted again
    (root / "final.txt").unlink()
    run_snakemake(root, "--forceall", cores=2)
    again = ll.Artifact.get(key="tmp/a.txt")
    assert again.uid == temp.uid and again.available is False


def _too_deep_to_list(folder: Path) -> None:
    """A chain of folders whose path is longer than PATH_MAX: listing it by path fails
    (ENAMETOOLONG), as listing a folder Snakemake deletes meanwhile fails (its locks)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(20):
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def test_snakefile_search_never_walks_dot_snakemake(instance: Instance, tmp_path: Path) -> None:
    """Rule sources are found by searching the workflow's .smk files when no line is known
    (imports): a folder that cannot be listed, inside .snakemake/ or elsewhere, must not
    cost the import its jobs."""
    root = write_workflow(
        tmp_path / "wf",
        'include: "rules/count.smk"\n\nrule all:\n    input: "out/n.txt"\n',
        {
            "rules/count.smk": 'rule count:\n    output: "out/n.txt"\n'
            '    shell: "echo 3 > {output}"\n',
        },
    )
    run_snakemake(root, plugin=False)
    _too_deep_to_list(root / ".snakemake")
    (root / "scratch").mkdir()
    _too_deep_to_list(root / "scratch")
    result = import_workflow(root)
    assert result.problems == []
    assert steps() == [Step("count", outputs=frozenset({"out/n.txt"}))]
    count = ll.Run.get(engine="snakemake", transform__key="count")
    assert count.transform.source_code is not None
    assert count.transform.source_code.startswith("rule count:")


def test_pipe_of_a_run_without_the_plugin_is_not_a_file(instance: Instance, tmp_path: Path) -> None:
    """Imported from .snakemake/metadata (which does not say what was a pipe): the
    Snakefile does."""
    root = write_workflow(
        tmp_path / "wf",
        PIPE.replace('pipe("stream.txt")', 'pipe("stream/{n}.txt")').replace(
            'input: "stream.txt"', 'input: "stream/1.txt"'
        ),
    )
    run_snakemake(root, cores=2, plugin=False, timeout=180)
    result = import_workflow(root)
    assert result.problems == []
    assert steps() == [Step("consume", outputs=frozenset({"out.txt"})), Step("produce")]


def test_a_path_through_a_link_below_the_workflow_folder_is_keyed_by_itself(
    tmp_path: Path,
) -> None:
    """`Writer.key_of`: a file reached through a symlink (itself, or a folder above it, up to
    the workflow folder) keeps its own path as key; any other file in the folder gets None
    (the save derives its key), also when the path is not clean or the folder ends in "/"."""
    from types import SimpleNamespace

    from snakemake_logger_plugin_lakeline.writer import Writer

    root = tmp_path / "wf"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "sub" / "a.txt").write_text("a")
    (root / "dir").symlink_to(root / "real")
    (root / "file.txt").symlink_to(root / "real" / "sub" / "a.txt")
    recorder = SimpleNamespace(upload=False)
    for workdir in (str(root), f"{root}/"):
        writer = Writer(recorder, workdir, lambda *a: None)  # type: ignore[arg-type]
        assert writer.key_of(f"{root}/real/sub/a.txt") is None
        assert writer.key_of(f"{root}/dir/sub/a.txt") == "dir/sub/a.txt"
        assert writer.key_of(f"{root}/file.txt") == "file.txt"
        assert writer.key_of(f"{root}/real/../dir/sub/a.txt") == "dir/sub/a.txt"
        assert writer.key_of(f"{root}/real/./sub/a.txt") is None
        assert writer.key_of(f"{root}/gone/sub/a.txt") is None
    assert Writer(SimpleNamespace(upload=True), str(root), None).key_of("/x/y.txt") == "y.txt"  # type: ignore[arg-type]


def test_an_event_stats_each_file_once_and_a_link_is_looked_at_again(tmp_path: Path) -> None:
    """`journal.stats_of` takes one lstat of a file that is no symlink and hands it to the
    writer (`seen`), whose `key_of(last=False)` then looks at the folders above it only; a
    symlink is left out of `seen` (its stats in the journal are its target's), so the writer
    stats it again and finds the link itself. `joined` is os.path.join of two str."""
    from types import SimpleNamespace

    from snakemake_logger_plugin_lakeline.journal import Seen, joined, stats_of
    from snakemake_logger_plugin_lakeline.writer import Writer

    root = tmp_path / "wf"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("a")
    (root / "dir").symlink_to(root / "real")
    (root / "link.txt").symlink_to(root / "real" / "a.txt")
    seen: Seen = {}
    names = ["real/a.txt", "dir/a.txt", "link.txt", "gone.txt"]
    found = stats_of(str(root), names, seen)
    target = os.stat(root / "real" / "a.txt")
    assert found == {name: [target.st_size, target.st_mtime_ns] for name in names[:3]}
    assert set(seen) == {"real/a.txt", "dir/a.txt"}  # the link itself is not in it
    writer = Writer(SimpleNamespace(upload=False), str(root), lambda *a: None)  # type: ignore[arg-type]
    assert writer.key_of(f"{root}/dir/a.txt", last=False) == "dir/a.txt"  # its folder
    assert writer.key_of(f"{root}/real/a.txt", last=False) is None
    assert writer.key_of(f"{root}/link.txt") == "link.txt"
    for folder in ("", "/", "wf", "wf/", "/a/b"):
        for path in ("", "x", "x/y", "/abs/z", "./x", "../x"):
            assert joined(folder, path) == os.path.join(folder, path)
