"""A team instance (issue 16 item 5): two users write to one PostgreSQL + S3 instance from
processes of their own at the same time; each record names its creator, nothing is lost.

Each user is a PostgreSQL login role with lakeline's write level, and the same name in
LAKELINE_USER (which PostgreSQL instances ignore: there the login role is the user).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import lakeline as ll
from lakeline.instance import Instance
from lakeline.models import User
from sqlalchemy import select
from sqlalchemy.engine import make_url

N = 12  # artifacts of each user, and as many versions of one shared key

_WRITER = """
import json, sys, time
from pathlib import Path
import lakeline as ll

folder, me, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ll.connect("team")
(folder / "ready").touch()
while not (folder.parent / "go").exists():  # both writers start together
    time.sleep(0.01)
uids = []
for i in range(n):
    mine = folder / f"{i}.txt"
    mine.write_text(f"{me} file {i}")
    uids.append(ll.Artifact(mine, key=f"{me}/{i}.txt").save().uid)
    shared = folder / "shared.txt"
    shared.write_text(f"{me} version {i}")
    uids.append(ll.Artifact(shared, key="shared.txt").save().uid)
print(json.dumps(uids))
"""


def _admin(postgres_server: Any, url: str, *statements: str) -> None:
    import psycopg

    database = make_url(url).database
    with psycopg.connect(
        host="127.0.0.1", port=postgres_server.port, user="postgres", dbname=database
    ) as conn:
        conn.autocommit = True
        for statement in statements:
            conn.execute(statement.encode())


def _login_role(postgres_server: Any, team: Instance, url: str, role: str) -> str:
    """Create login role `role` with lakeline's write level on the instance; its URL."""
    from lakeline.access.roles import grant

    _admin(postgres_server, url, f'CREATE ROLE "{role}" LOGIN')
    grant(team.engine, role, "write")
    return make_url(url).set(username=role).render_as_string(hide_password=False)


def test_two_users_write_to_one_team_instance_at_once(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_server: Any,
    postgres_url: str,
    s3_server: Any,
    s3_bucket: str,
) -> None:
    storage = f"s3://{s3_bucket}/lake"
    team = ll.init(
        storage=storage, db=postgres_url, name="team", storage_options=s3_server.storage_options
    )
    suffix = uuid.uuid4().hex[:8]  # roles belong to the whole cluster
    users = [f"alice_{suffix}", f"bob_{suffix}"]
    made: list[str] = []
    try:
        writers = []
        for user in users:
            home = tmp_path / f"home-{user}"  # each user on a machine of their own
            env = {
                **os.environ,
                "LAKELINE_HOME": str(home),
                "LAKELINE_CACHE_DIR": str(home / "cache"),
                "LAKELINE_USER": user,
            }
            db = _login_role(postgres_server, team, postgres_url, user)
            made.append(user)
            options = json.dumps(s3_server.storage_options["client_kwargs"])
            joined = subprocess.run(
                [
                    *(
                        str(Path(sys.executable).with_name("lakeline")),
                        "init",
                        "--storage",
                        storage,
                    ),
                    *("--db", db, "--name", "team"),
                    *("--storage-option", f"key={s3_server.key}"),
                    *("--storage-option", f"secret={s3_server.secret}"),
                    *("--storage-option", f"client_kwargs={options}"),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            assert joined.returncode == 0, joined.stderr
            folder = tmp_path / "work" / user
            folder.mkdir(parents=True)
            writers.append(
                subprocess.Popen(
                    [sys.executable, "-c", _WRITER, str(folder), user, str(N)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        while not all((tmp_path / "work" / u / "ready").exists() for u in users):
            assert all(w.poll() is None for w in writers), [w.communicate() for w in writers]
            time.sleep(0.05)
        (tmp_path / "work" / "go").touch()
        saved: dict[str, list[str]] = {}
        for user, writer in zip(users, writers, strict=True):
            out, err = writer.communicate(timeout=600)
            assert writer.returncode == 0, err
            saved[user] = json.loads(out.splitlines()[-1])

        with team.sessions.read() as session:
            handles = {u.id: u.handle for u in session.scalars(select(User))}
        for user in users:
            mine = ll.Artifact.filter(key__startswith=f"{user}/").all()
            assert sorted(a.key for a in mine) == sorted(f"{user}/{i}.txt" for i in range(N))
            assert {handles[a.created_by_id] for a in mine} == {user}
            assert {a.uid for a in mine} | {
                a.uid
                for a in ll.Artifact.filter(key="shared.txt", is_latest=None)
                if handles[a.created_by_id] == user
            } == set(saved[user])
            for a in mine:
                assert Path(a.cache()).read_text() == f"{user} file {a.key.split('/')[1][:-4]}"
        versions = ll.Artifact.filter(key="shared.txt", is_latest=None).all()
        assert len(versions) == 2 * N and sum(v.is_latest for v in versions) == 1
        assert sorted(handles[v.created_by_id] for v in versions) == sorted(users * N)
        assert len({v.uid for v in versions}) == 2 * N and len({v.stem for v in versions}) == 1
    finally:
        from lakeline.instance import disconnect

        disconnect()
        for user in made:
            _admin(
                postgres_server,
                postgres_url,
                f'DROP OWNED BY "{user}"',
                f'DROP ROLE IF EXISTS "{user}"',
            )
