"""`lakeline ui` over plain HTTP: every route, escaping, keyset pages, lookups, bad input and
the security rules, on SQLite and PostgreSQL (real instances, Starlette's TestClient)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import lakeline as ll
import pytest
from lakeline.errors import LakelineError
from lakeline.instance import Instance
from lakeline.ui.server import COOKIE, create_app
from ui_catalog import XSS, Catalog, build, database_away, served

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def catalog(instance: Instance, tmp_path: Path) -> Catalog:
    return build(tmp_path)


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(instance.name), base_url="http://127.0.0.1") as made:
        yield made


def ok(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.text[-500:]
    return response.text


def links(html: str, prefix: str) -> list[str]:
    return re.findall(rf'href="({re.escape(prefix)}[^"#?]*)', html)


def test_every_page_renders_and_escapes_user_text(
    client: TestClient, catalog: Catalog, instance: Instance
) -> None:
    storage_root = instance.storage.root
    pages = {
        "/": ["toy-pipeline", "Failed runs", catalog.failed.uid, "Storages", storage_root],
        "/artifacts": ["data/reads.csv", "out/counts.csv", instance.user.handle],
        "/artifacts?view=folders": ["data/", "out/", "notes/"],
        "/artifacts?view=folders&prefix=out/": ["counts.csv", "summary.txt"],
        f"/artifacts/{catalog.counts.uid}": ["s1", "count", "Download", catalog.align.uid],
        f"/artifacts/{catalog.counts.uid[:12]}": ["out/counts.csv"],
        f"/artifacts/{catalog.hostile.uid}": ["described as"],
        "/runs": [catalog.workflow.uid],
        "/runs?status=errored": [catalog.failed.uid],
        f"/runs/{catalog.workflow.uid}": ["Steps", "align", "summarise", "plot"],
        f"/runs/{catalog.align.uid}": [
            "threads",
            "data/reads.csv",
            "out/counts.csv",
            "highlight",
            'id="status-log">\n<li>started <span',
            "<li>completed <span",
        ],
        f"/runs/{catalog.failed.uid}": ["Traceback", "errored"],
    }
    transform = ok(client, f"/runs/{catalog.align.uid}")
    (transform_link,) = set(links(transform, "/transforms/"))
    pages[transform_link] = ["align", catalog.align.uid, "Versions"]
    pipeline = ok(client, f"/runs/{catalog.workflow.uid}")
    found = re.search(r'id="run-title">Run of <a href="(/transforms/\w+)"', pipeline)
    assert found is not None
    pipeline_link = found.group(1)
    pages[pipeline_link] = ["toy-pipeline", "Steps", f"/runs/{catalog.workflow.uid}#lineage"]
    for url, expected in pages.items():
        html = ok(client, url)
        for text in expected:
            assert text in html, (url, text)
        assert XSS not in html and "<script" not in html, url  # escaped; the UI has no script
    hostile = ok(client, f"/artifacts/{catalog.hostile.uid}")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in hostile  # key and description
    assert "text with &lt;script&gt;" in hostile  # the text preview
    run_page = ok(client, f"/runs/{catalog.align.uid}")
    assert "&lt;script&gt;" in run_page  # params and highlighted source
    css = client.get("/static/style.css")
    assert css.headers["content-type"].startswith("text/css") and ".highlight" in css.text


def test_security_headers_forbid_scripts(client: TestClient, catalog: Catalog) -> None:
    response = client.get(f"/artifacts/{catalog.hostile.uid}")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_lineage_is_drawn_with_clickable_nodes_and_a_depth_control(
    client: TestClient, catalog: Catalog
) -> None:
    html = ok(client, f"/artifacts/{catalog.summary.uid}?direction=upstream&depth=all")
    svg = html[html.index("<svg") : html.index("</svg>")]
    for node in (catalog.align, catalog.raw, catalog.counts):
        kind = "runs" if isinstance(node, ll.Run) else "artifacts"
        assert f'href="/{kind}/{node.uid}"' in svg
    shallow = ok(client, f"/artifacts/{catalog.summary.uid}?direction=upstream&depth=1")
    assert f"/artifacts/{catalog.counts.uid}" in shallow
    assert f'href="/artifacts/{catalog.raw.uid}"' not in shallow  # two steps away
    down = ok(client, f"/artifacts/{catalog.raw.uid}?direction=downstream&depth=1")
    assert f'href="/runs/{catalog.align.uid}"' in down
    bad = ok(client, f"/artifacts/{catalog.raw.uid}?depth=deep")
    assert "depth must be a number" in bad
    run_graph = ok(client, f"/runs/{catalog.workflow.uid}?depth=1")
    assert f'href="/runs/{catalog.align.uid}"' in run_graph


def test_a_graph_too_big_to_draw_asks_for_a_smaller_depth(
    instance: Instance, catalog: Catalog
) -> None:
    app = create_app(instance.name, lineage_limit=3)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        html = ok(client, f"/artifacts/{catalog.summary.uid}?direction=upstream&depth=all")
    assert "too many to draw" in html and "<svg" not in html


def test_download_sends_the_artifacts_own_bytes(client: TestClient, catalog: Catalog) -> None:
    response = client.get(f"/artifacts/{catalog.counts.uid}/download")
    assert response.status_code == 200
    assert response.content == b"sample,count\ns1,5\ns2,7\n"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == "attachment; filename*=UTF-8''counts.csv"
    hostile = client.get(f"/artifacts/{catalog.hostile.uid}/download")
    assert hostile.content.startswith(b"text with <script>")
    assert hostile.headers["content-type"] == "application/octet-stream"  # never rendered
    assert hostile.headers["content-disposition"].endswith("''script%3E.txt")
    # nothing in the address picks other bytes: extra path parts and parameters are not routes
    for url in (
        f"/artifacts/{catalog.counts.uid}/download/../../../../etc/passwd",
        f"/artifacts/{catalog.counts.uid}/download?path=/etc/passwd",
        f"/artifacts/{quote('../../etc/passwd', safe='')}/download",
    ):
        response = client.get(url)
        assert b"root:" not in response.content, url
        if response.status_code == 200:
            assert response.content == b"sample,count\ns1,5\ns2,7\n"


def test_download_of_a_folder_or_a_reference_explains_why_not(
    client: TestClient, catalog: Catalog, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    saved = ll.Artifact(folder, key="dirs/folder").save()
    ref = ll.Artifact.reference("s3://elsewhere/x.bin", key="refs/x.bin").save()
    for artifact, words in ((saved, "folder of 1 files"), (ref, "reference")):
        response = client.get(f"/artifacts/{artifact.uid}/download")
        assert response.status_code == 404 and words in response.text
        assert "Download" not in ok(client, f"/artifacts/{artifact.uid}")


def test_artifact_pages_page_by_keyset_in_every_sort(client: TestClient, catalog: Catalog) -> None:
    ll.Artifact.reference("https://example.org/no-size.txt", key="refs/no-size.txt").save()
    everything = {a.uid for a in ll.Artifact.filter().all()}
    for sort in ("key", "-key", "size", "-size", "created_at", "-created_at"):
        seen: list[str] = []
        url: str | None = f"/artifacts?sort={sort}&limit=2"
        while url is not None:
            html = ok(client, url)
            table = html[html.index('id="artifacts"') :]
            seen += re.findall(r'class="artifact-link" href="/artifacts/(\w+)"', table)
            found = re.search(r'id="next-page" href="([^"]+)"', html)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert len(seen) == len(set(seen)) and set(seen) == everything, sort


def test_api_lookups_in_the_query_string(client: TestClient, catalog: Catalog) -> None:
    html = ok(client, "/artifacts?key__startswith=out/")
    table = html[html.index('id="artifacts"') :]
    assert "out/counts.csv" in table and "data/reads.csv" not in table
    html = ok(client, "/artifacts?run__transform__key=align&size__gt=1")
    assert "out/counts.csv" in html and "out/summary.txt" not in html[html.index("<table") :]
    html = ok(client, "/artifacts?q=counts")
    assert "out/counts.csv" in html
    bad = {
        "/artifacts?key__startwith=raw/": "unknown operator 'startwith'",
        "/artifacts?colour=red": "has no field 'colour'",
        "/artifacts?size__gt=big": "size__gt expects a value of type int",
        "/artifacts?after=not-a-cursor": "malformed page cursor",
        "/artifacts?sort=colour": "unknown sort 'colour'",
        "/artifacts?available=maybe": "takes true or false",
        "/artifacts?view=folders&prefix=out": "ends with '/'",
    }
    for url, message in bad.items():
        response = client.get(url)
        assert response.status_code == 400, url
        assert message.replace("'", "&#39;") in response.text, (url, response.text[-800:])


def test_unknown_things_are_404_pages(client: TestClient, catalog: Catalog) -> None:
    for url in (
        "/artifacts/AAAAAAAAAAAAAAAA",
        "/artifacts/AAAAAAAAAAAA",
        "/artifacts/not-a-uid!",
        "/artifacts/AAAAAAAAAAAAAAAA/download",
        "/key/no/such/key.txt",
        "/runs/AAAAAAAAAAAAAAAA",
        "/runs/short",
        f"/runs/{catalog.align.uid}/report",
        "/transforms/AAAAAAAAAAAAAAAA",
        "/nowhere",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Not found" in response.text or "No report" in response.text, url
        assert "Traceback" not in response.text
    response = client.get("/key/out/counts.csv", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/artifacts/{catalog.counts.uid}"


def _edges(instance: Instance) -> int:
    from sqlalchemy import func, select

    with instance.sessions.read() as session:
        return int(session.scalar(select(func.count()).select_from(ll.RunInput)) or 0)


def test_nothing_writes(client: TestClient, catalog: Catalog, instance: Instance) -> None:
    before = (
        ll.Artifact.filter(is_latest=None).count(),
        ll.Run.filter().count(),
        _edges(instance),
    )
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        urls = ("/", f"/artifacts/{catalog.counts.uid}", f"/runs/{catalog.align.uid}")
        for url in (*urls, "/collections", "/labels", "/features"):
            response = client.request(method, url)
            assert response.status_code == 405, (method, url)
            assert "read-only" in response.text
    pages = ("/", "/artifacts", f"/artifacts/{catalog.counts.uid}", f"/runs/{catalog.align.uid}")
    for url in pages:
        ok(client, url)
    client.get(f"/artifacts/{catalog.counts.uid}/download")
    after = (ll.Artifact.filter(is_latest=None).count(), ll.Run.filter().count(), _edges(instance))
    assert after == before  # viewing, previewing or downloading records no use


def test_loopback_serves_only_loopback_host_names(instance: Instance) -> None:
    app = create_app(instance.name)
    with TestClient(app, base_url="http://evil.example") as client:
        assert client.get("/").status_code == 400  # a DNS-rebound page cannot read the catalog
    with TestClient(app, base_url="http://localhost:8765") as client:
        assert client.get("/").status_code == 200


def test_other_hosts_need_the_token(instance: Instance, catalog: Catalog) -> None:
    with pytest.raises(LakelineError, match="needs a token"):
        create_app(instance.name, host="0.0.0.0")
    app = create_app(instance.name, host="0.0.0.0", token=TOKEN)
    with TestClient(app, base_url="http://192.0.2.1") as client:
        missing = client.get(f"/artifacts/{catalog.counts.uid}")
        assert missing.status_code == 401 and "token needed" in missing.text
        assert catalog.counts.uid not in missing.text and 'class="instance"' not in missing.text
        wrong = client.get("/?token=wrong")
        assert wrong.status_code == 401 and "wrong token" in wrong.text
        assert COOKIE not in client.cookies
        assert client.get("/", headers={"authorization": "Bearer nope"}).status_code == 401
        client.cookies.set(COOKIE, "nope")
        assert client.get("/").status_code == 401
        client.cookies.clear()
        first = client.get(f"/artifacts?token={TOKEN}&sort=-size", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/artifacts?sort=-size"
        set_cookie = first.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert client.get(f"/artifacts/{catalog.counts.uid}").status_code == 200  # the cookie
        away = client.get(f"http://192.0.2.1//evil.example/x?token={TOKEN}", follow_redirects=False)
        assert away.headers["location"] == "/evil.example/x"  # a path here, not another host
        client.cookies.clear()
        bearer = client.get("/", headers={"authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200


def test_a_database_gone_while_serving_is_503_until_it_is_back(
    instance: Instance, catalog: Catalog, client: TestClient
) -> None:
    ok(client, f"/artifacts/{catalog.counts.uid}")
    with database_away(instance):
        for page in (
            "/",
            "/artifacts",
            f"/artifacts/{catalog.counts.uid}",
            f"/runs/{catalog.align.uid}",
            "/collections",
        ):
            response = client.get(page)
            assert response.status_code == 503, (page, response.text[-400:])
            assert "Catalog unavailable" in response.text and "Traceback" not in response.text
    assert "out/counts.csv" in ok(client, f"/artifacts/{catalog.counts.uid}")  # recovered
    ok(client, "/")


def test_previews_of_tables_and_anndata(
    client: TestClient, instance: Instance, tmp_path: Path
) -> None:
    pd = pytest.importorskip("pandas")
    anndata = pytest.importorskip("anndata")
    import numpy as np

    frame = pd.DataFrame({"gene": [f"g{i}" for i in range(50)], "value": range(50)})
    table = ll.Artifact.from_dataframe(frame, key="tables/genes.parquet").save()
    html = ok(client, f"/artifacts/{table.uid}")
    assert "<th>gene</th>" in html and "<td>g19</td>" in html and "<td>g20</td>" not in html
    obs = pd.DataFrame({"cell_type": ["T", "B", "NK"]}, index=["c1", "c2", "c3"])
    adata = anndata.AnnData(np.zeros((3, 4), dtype="float32"), obs=obs)
    saved = ll.Artifact.from_anndata(adata, key="cells/pbmc.h5ad").save()
    html = ok(client, f"/artifacts/{saved.uid}")
    assert "3 observations x 4 variables" in html and "cell_type" in html and "NK" in html


@pytest.mark.s3
def test_download_and_preview_from_s3(s3_instance: Instance, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("kept in a bucket\n")
    saved = ll.Artifact(source, key="docs/notes.txt").save()
    assert s3_instance.storage_by_id(saved.storage_id).root.startswith("s3://")
    with TestClient(create_app(s3_instance.name), base_url="http://127.0.0.1") as client:
        response = client.get(f"/artifacts/{saved.uid}/download")
        assert response.status_code == 200 and response.content == b"kept in a bucket\n"
        assert "kept in a bucket" in ok(client, f"/artifacts/{saved.uid}")


def test_cli_serves_the_instance_with_uvicorn(instance: Instance, catalog: Catalog) -> None:
    import httpx

    with served("--instance", instance.name) as base:
        page = httpx.get(f"{base}/artifacts/{catalog.counts.uid}")
        assert page.status_code == 200 and "out/counts.csv" in page.text
        assert page.headers.get("server") is None  # no server banner
        assert httpx.post(f"{base}/").status_code == 405
        assert httpx.get(f"{base}/runs/AAAAAAAAAAAAAAAA").status_code == 404


def test_cli_with_a_token_file(instance: Instance, catalog: Catalog, tmp_path: Path) -> None:
    import httpx

    token_file = tmp_path / "ui-token"
    with served("--token-file", str(token_file)) as base:
        token = token_file.read_text().strip()
        assert len(token) >= 32 and token_file.stat().st_mode & 0o777 == 0o600
        assert httpx.get(f"{base}/").status_code == 401
        assert httpx.get(f"{base}/?token=x{token}").status_code == 401
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            assert browser.get(f"/?token={token}").status_code == 200
            assert browser.get("/artifacts").status_code == 200  # the cookie


def test_cli_refuses_an_open_bind_without_a_token(instance: Instance, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from lakeline.cli import cli

    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    unknown = CliRunner().invoke(cli, ["ui", "--instance", "nosuch"])
    assert unknown.exit_code == 1 and "nosuch" in unknown.output
    assert "--token-file" in result.output and "Traceback" not in result.output
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    result = CliRunner().invoke(cli, ["ui", "--token-file", str(empty)])
    assert result.exit_code == 1 and "at least 16 characters" in result.output


def test_folder_view_pages_through_files_and_subfolders(
    client: TestClient, instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeline.ui import queries

    keys = [f"lab/f{i}.txt" for i in range(5)] + [f"lab/sub{i}/x.txt" for i in range(4)]
    keys += ["lab.txt", "lab/sub1/deeper/y.txt", "lab/sub10.txt", "other/z.txt"]
    for n, key in enumerate(keys):
        source = tmp_path / f"{n}.txt"
        source.write_text(str(n))
        ll.Artifact(source, key=key).save()
    monkeypatch.setattr(queries, "FOLDER_ENTRIES", 3)
    seen: list[str] = []
    url: str | None = "/artifacts?view=folders&prefix=lab/"
    while url is not None:
        html = ok(client, url)
        table = html[html.index('id="folder"') :]
        seen += re.findall(r'class="(?:folder|artifact)-link" href="[^"]+">([^<]+)</a>', table)
        found = re.search(r'id="next-page" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    expected = [f"f{i}.txt" for i in range(5)] + ["sub0/", "sub1/", "sub10.txt", "sub2/", "sub3/"]
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)


def test_report_renders_sandboxed_and_environment_is_linked(
    client: TestClient, catalog: Catalog, instance: Instance, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.html"
    report_file.write_text(f"<html><body><h1>Report</h1>{XSS}</body></html>")
    report = ll.Artifact(report_file, key="reports/align.html").save()
    env_file = tmp_path / "env.json"
    env_file.write_text('{"numpy": "2.0"}')
    environment = ll.Artifact(env_file, key="envs/align.json").save()
    with instance.sessions.write() as session:
        run = session.get(ll.Run, catalog.align.id)
        assert run is not None
        run.report_id, run.environment_id = report.id, environment.id
    html = ok(client, f"/runs/{catalog.align.uid}")
    assert f'href="/runs/{catalog.align.uid}/report"' in html
    assert f'href="/artifacts/{environment.uid}"' in html
    response = client.get(f"/runs/{catalog.align.uid}/report")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert policy.startswith("sandbox") and "script" not in policy  # no script runs, no cookie
    assert "<h1>Report</h1>" in response.text


def test_overview_counts_are_reused_then_recounted_in_the_background(
    instance: Instance, catalog: Catalog, tmp_path: Path
) -> None:
    import time

    from lakeline.ui.queries import Counts

    counts = Counts(ttl=0.0)
    counts.get()  # the first count runs in the background (test_scale_plans.py)
    for _ in range(500):
        if counts.get():
            break
        time.sleep(0.01)
    first = counts.get()
    assert first["artifacts"] == 4 and first["runs"] == 4 and first["failed runs"] == 2
    (tmp_path / "new.txt").write_text("new")
    ll.Artifact(tmp_path / "new.txt", key="new.txt").save()
    assert counts.get()["artifacts"] == 4  # the previous figures, while recounting
    for _ in range(500):
        if counts.get()["artifacts"] == 5:
            break
        time.sleep(0.01)
    assert counts.get()["artifacts"] == 5


def test_versions_are_listed_and_switchable(
    client: TestClient, instance: Instance, tmp_path: Path
) -> None:
    source = tmp_path / "table.csv"
    source.write_text("a\n1\n")
    first = ll.Artifact(source, key="tables/t.csv").save()
    source.write_text("a\n2\n")
    second = ll.Artifact(source, key="tables/t.csv").save()
    assert first.stem == second.stem and first.uid != second.uid
    latest = ok(client, f"/artifacts/{first.stem}")
    assert f"/artifacts/{first.uid}" in latest and "<td>2</td>" in latest  # the latest's rows
    old = ok(client, f"/artifacts/{first.uid}")
    assert f"/artifacts/{second.uid}" in old and "<td>1</td>" in old
    listed = ok(client, "/artifacts?key=tables/t.csv")
    assert second.uid in listed and first.uid not in listed
    every = ok(client, "/artifacts?key=tables/t.csv&is_latest=all")
    assert second.uid in every and first.uid in every


def test_keyset_pages_walk_the_sort_index_on_an_analyzed_sqlite(
    client: TestClient, catalog: Catalog, instance: Instance
) -> None:
    """Page n+1 reads the sort column's index from the cursor on, in order (no sort of every
    row after it). With ANALYZE statistics of a million artifacts SQLite planned `size < v OR
    (size = v AND id < i)` as two index searches and a temporary B-tree over all of them (1 s
    at 100k rows); PostgreSQL walks the index backwards either way."""
    from sqlalchemy import event

    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "artifacts.id <" in sql or "artifacts.id >" in sql:
            statements.append((sql, params))

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        for sort in ("key", "-key", "size", "-size", "created_at", "-created_at"):
            first = ok(client, f"/artifacts?sort={sort}&limit=1")
            found = re.search(r'id="next-page" href="([^"]+)"', first)
            assert found is not None, sort
            ok(client, found.group(1).replace("&amp;", "&"))
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    assert len(statements) >= 6
    if instance.dialect != "sqlite":
        return
    stats = [  # what ANALYZE writes for 100k artifacts of bench/workload.py
        ("artifacts", "uq_artifacts_latest_stem", "100000 1"),
        ("artifacts", "uq_artifacts_latest_key", "100000 1"),
        ("artifacts", "ix_artifacts_storage_id_store_key", "100000 100000 1"),
        ("artifacts", "ix_artifacts_stem", "100000 1"),
        ("artifacts", "ix_artifacts_size", "100000 2"),
        ("artifacts", "ix_artifacts_run_id", "100000 100000"),
        ("artifacts", "ix_artifacts_key", "100000 1"),
        ("artifacts", "ix_artifacts_hash", "100000 1"),
        ("artifacts", "ix_artifacts_created_at", "100000 1"),
        ("artifacts", "sqlite_autoindex_artifacts_1", "100000 1"),
    ]
    with instance.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")  # creates sqlite_stat1
        connection.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'artifacts'")
        for row in stats:
            connection.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", row)
        connection.exec_driver_sql("ANALYZE sqlite_schema")  # load them
        for sql, params in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            details = " / ".join(str(step[-1]) for step in plan)
            assert "TEMP B-TREE" not in details and "MULTI-INDEX OR" not in details, (sql, details)
        connection.exec_driver_sql("DELETE FROM sqlite_stat1")
        connection.commit()


def test_page_titles_are_plain_text(client: TestClient, catalog: Catalog) -> None:
    """A page's <title> names it in plain words: no markup (the overview's title once held a
    whole table, shown as raw tags in the browser's tab)."""
    pages = {
        "/": "Overview",
        "/artifacts": "Artifacts",
        "/runs": "Runs",
        "/labels": "Labels",
        "/features": "Features",
        "/collections": "Collections",
        f"/artifacts/{catalog.counts.uid}": "out/counts.csv",
        f"/runs/{catalog.align.uid}": f"run {catalog.align.uid}",
    }
    for url, name in pages.items():
        found = re.search(r"<title>(.*?)</title>", ok(client, url), re.DOTALL)
        assert found is not None, url
        assert found.group(1).startswith(f"{name} · lakeline"), (url, found.group(1)[:200])
        assert "<" not in found.group(1) and "\n" not in found.group(1), url
