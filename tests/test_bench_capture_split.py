"""bench/capture_split.py's fixed cost a run and slope a task are what its rounds measured:
each round's fixed + n x slope gives back that round's two runs, and the summary's medians
are the rounds' medians (real redun runs on SQLite at tiny sizes; nothing about time)."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
ROUND = re.compile(
    r"^round (\d+) B redun sqlite: (.*) -> fixed (-?[\d.]+) ms \+ (-?[\d.]+) ms a task;"
)
SUMMARY = re.compile(
    r"^redun +sqlite +B 3/7 +fixed (-?[\d.]+) \[(-?[\d.]+)\.\.(-?[\d.]+)\] +"
    r"slope (-?[\d.]+) \[(-?[\d.]+)\.\.(-?[\d.]+)\] a task"
)


def test_the_split_reproduces_each_rounds_two_runs(tmp_path: Path) -> None:
    figures = tmp_path / "split.json"
    argv = [sys.executable, "bench/capture_split.py", "--engines", "redun", "--db", "sqlite"]
    argv += ["--rounds", "3", "--sizes", "redun=3:7", "--warm", "2", "--json", str(figures)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rounds = [m for line in done.stdout.splitlines() if (m := ROUND.match(line))]
    assert [int(m[1]) for m in rounds] == [1, 2, 3]
    stored = json.loads(figures.read_text())[0]["B"]
    fixed, slopes = [], []
    for m, runs in zip(rounds, stored, strict=True):
        measured = [(int(n), float(c)) for n, c in re.findall(r"(\d+) tasks ([\d.]+) ms", m[2])]
        assert measured == [(r["n"], round(r["cpu"] * 1000, 2)) for r in runs]  # as printed
        assert all(c > 0 for _, c in measured)
        f, s = float(m[3]), float(m[4])
        for n, c in measured:  # printed to 0.01 ms and 0.0001 ms a task
            assert abs(f + n * s - c) <= 0.0101 + n * 0.00005, (f, s, n, c)
        fixed.append(f)
        slopes.append(s)
    # the sizes back to back, the order alternated: small first, then large first
    assert [[r["n"] for r in runs] for runs in stored] == [[3, 7], [7, 3], [3, 7]]
    summary = [m for line in done.stdout.splitlines() if (m := SUMMARY.match(line))]
    assert len(summary) == 1, done.stdout
    got = [float(x) for x in summary[0].groups()]
    want = [statistics.median(fixed), min(fixed), max(fixed)]
    want += [statistics.median(slopes), min(slopes), max(slopes)]
    assert all(abs(g - w) <= 0.051 for g, w in zip(got[:3], want[:3], strict=True)), (got, want)
    assert all(abs(g - w) <= 0.00051 for g, w in zip(got[3:], want[3:], strict=True)), (got, want)


def _split(*options: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "bench/capture_split.py", "--db", "sqlite", *options]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_sizes_it_cannot_run_are_refused_before_running() -> None:
    """track runs at one size and the Nextflow import at its fixture's 486 tasks: other
    sizes, sizes that are not whole numbers and no rounds are refused, naming the problem,
    before anything runs (on slopes 5cdff2f: a child's FileExistsError, the size ignored, a
    ValueError, an IndexError after the run)."""
    for options, named in [
        (("--engines", "track", "--sizes", "track=5:9"), "track"),
        (("--engines", "nextflow", "--sizes", "nextflow=100"), "nextflow"),
        (("--engines", "redun", "--sizes", "redun=a:9"), "redun=a:9"),
        (("--engines", "redun", "--rounds", "0"), "--rounds"),
    ]:
        done = _split("--rounds", "1", *options)
        assert done.returncode == 2, (options, done.stderr[-2000:])
        assert named in done.stderr, (options, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (options, done.stderr[-2000:])


def test_a_redun_size_equal_to_the_warm_up_runs() -> None:
    """redun's warm-up run (`--warm` tasks) and a measured size of as many tasks each get
    their own workflow folder."""
    done = _split("--engines", "redun", "--rounds", "1", "--sizes", "redun=2:4", "--warm", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^round 1 B redun sqlite: 2 tasks .*, 4 tasks ", done.stdout, re.M)


def test_the_nextflow_import_keeps_its_dry_run_without_baselines() -> None:
    """The Nextflow import's figure is less its dry run (its baseline): `--no-baseline` still
    runs that one (before: an IndexError in the child after the import, the whole run lost)."""
    from lakeline.testing import unavailable

    fixture = ROOT.parent / "shared" / "fixtures" / "nextflow"
    if not (fixture / "nf-core-crispriscreen-1.2.0-nf24.04.4").is_dir():
        unavailable(f"Nextflow fixtures not found at {fixture}")
    done = _split("--engines", "nextflow", "--rounds", "1", "--no-baseline")
    assert done.returncode == 0, done.stderr[-3000:]
    line = re.search(r"^round 1 B nextflow sqlite: 486 tasks ([\d.]+) ms -> ", done.stdout, re.M)
    assert line is not None, done.stdout[-2000:]
    assert float(line[1]) > 0  # the import's CPU less its dry run's


def test_a_sigterm_leaves_no_temporary_folder(tmp_path: Path) -> None:
    """SIGTERM to the bench while its child runs redun: the child is asked to stop (SIGTERM)
    and removes its folder, the bench its own (before: the child was killed, SIGKILL, and its
    folder with a catalog and a redun project stayed in $TMPDIR)."""
    argv = [sys.executable, "bench/capture_split.py", "--db", "sqlite", "--engines", "redun"]
    argv += ["--rounds", "1", "--sizes", "redun=300:400", "--warm", "2"]
    env = dict(os.environ, TMPDIR=str(tmp_path))  # every temporary folder made here
    bench = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while bench.poll() is None and time.monotonic() < deadline:
            if list(tmp_path.glob("**/home")):  # the child's LAKELINE_HOME: it runs
                break
            time.sleep(0.1)
        assert bench.poll() is None, bench.communicate()[1][-3000:]
        time.sleep(1.0)
        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 128 + signal.SIGTERM, err[-3000:]
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("**/*"))
    assert left == [], left
