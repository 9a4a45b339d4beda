"""`lakeline ui` pages of what annotates an artifact: its features (with dtypes), labels (with
their types), schemas and collections; label, feature, schema and collection pages; the
artifacts carrying a label or a value listed through the API's lookups. SQLite and PostgreSQL,
hostile names and values everywhere."""

from __future__ import annotations

import html as html_lib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import lakeline as ll
import modules_lab
import pytest
from lakeline.instance import Instance
from lakeline.ui.server import create_app
from ui_catalog import XSS, Annotations, Catalog, annotate, build

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def catalog(instance: Instance, tmp_path: Path) -> Catalog:
    return build(tmp_path)


@pytest.fixture
def annotated(catalog: Catalog) -> Annotations:
    return annotate(catalog)


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(instance.name), base_url="http://127.0.0.1") as made:
        yield made


def ok(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text[-800:])
    assert XSS not in response.text and "<script" not in response.text, url  # all escaped
    return response.text


def section(html: str, ident: str) -> str:
    start = html.index(f'id="{ident}"')
    return html[start : html.index("</section>", start)]


def listed(html: str) -> set[str]:
    """The artifact uids of the page's artifacts table."""
    table = html[html.index('id="artifacts"') :]
    return set(re.findall(r'class="artifact-link" href="/artifacts/(\w+)"', table))


def href(html: str, ident: str) -> str:
    found = re.search(rf'id="{ident}"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*id="{ident}"', html)
    assert found is not None, ident
    return html_lib.unescape(found.group(1) or found.group(2))


ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


def test_artifact_page_shows_features_labels_schemas_and_collections(
    client: TestClient, catalog: Catalog, annotated: Annotations
) -> None:
    page = ok(client, f"/artifacts/{catalog.counts.uid}")
    features = section(page, "features")
    assert f'href="/features/{annotated.temperature.uid}"' in features
    assert "float" in features and "°C" in features and "37.5" in features
    assert "cat[ULabel[CellType]]" in features
    assert f'href="/labels/{annotated.t_cell.uid}"' in features and "T cell" in features
    assert f"note {ESCAPED}" in features and f"value {ESCAPED}" in features
    labels = section(page, "labels")
    assert f'href="/labels/{annotated.b_cell.uid}"' in labels and "B cell" in labels
    assert "CellType" in labels  # the label's type
    assert f'href="/labels/{annotated.hostile_label.uid}"' in labels and ESCAPED in labels
    schemas = section(page, "schemas")
    assert f'href="/schemas/{annotated.schema.uid}"' in schemas and "obs" in schemas
    assert f"obs {ESCAPED}" in schemas and "DataFrame" in schemas and "2 features" in schemas
    collections = section(page, "collections")
    assert f'href="/collections/{annotated.collection.uid}"' in collections
    assert "sets/reads" in collections
    assert annotated.first_collection.uid not in collections  # counts is not in the first version
    bare = ok(client, f"/artifacts/{catalog.summary.uid}")
    assert "no features" in section(bare, "features") and "no labels" in section(bare, "labels")
    raw = section(ok(client, f"/artifacts/{catalog.raw.uid}"), "collections")
    assert annotated.first_collection.uid in raw and annotated.collection.uid in raw


def test_a_label_lists_the_artifacts_carrying_it_through_the_api_lookups(
    client: TestClient, catalog: Catalog, annotated: Annotations
) -> None:
    page = ok(client, f"/labels/{annotated.b_cell.uid}")
    assert "B cell" in page and f'href="/labels/{annotated.cell_type.uid}"' in page  # its type
    assert listed(page) == {catalog.counts.uid}
    everything = href(page, "label-artifacts")
    assert everything == "/artifacts?ulabels__name=B+cell"
    assert listed(ok(client, everything)) == {catalog.counts.uid}
    # the categorical value's label: carried through the feature `cells`
    t_cell = ok(client, f"/labels/{annotated.t_cell.uid}")
    assert listed(t_cell) == {catalog.counts.uid}
    assert listed(ok(client, href(t_cell, "label-artifacts"))) == {catalog.counts.uid}
    hostile = ok(client, f"/labels/{annotated.hostile_label.uid}")
    assert ESCAPED in hostile and f"a label described as {ESCAPED}" in hostile
    assert listed(ok(client, href(hostile, "label-artifacts"))) == {catalog.counts.uid}
    # a label type lists its labels and links the artifacts carrying any of them
    kind = ok(client, f"/labels/{annotated.cell_type.uid}")
    for label in (annotated.t_cell, annotated.b_cell):
        assert f'href="/labels/{label.uid}"' in section(kind, "records")
    assert listed(ok(client, href(kind, "label-artifacts"))) == {catalog.counts.uid}
    # typed by hand, as in the API
    assert listed(ok(client, "/artifacts?ulabels__name__in=B cell,T cell")) == {catalog.counts.uid}
    assert listed(ok(client, "/artifacts?ulabels__name=nothing")) == set()


def test_a_label_name_shared_by_two_types_links_by_uid(
    client: TestClient, catalog: Catalog, annotated: Annotations
) -> None:
    other_type = ll.ULabel(name="Batch", is_type=True).save()
    twin = ll.ULabel(name="B cell", type=other_type).save()
    catalog.raw.labels.add(twin)
    page = ok(client, f"/labels/{annotated.b_cell.uid}")
    assert href(page, "label-artifacts") == f"/artifacts?ulabels__uid={annotated.b_cell.uid}"
    assert listed(ok(client, href(page, "label-artifacts"))) == {catalog.counts.uid}
    by_name = ok(client, "/artifacts?ulabels__name=B cell")  # both labels, as the API says
    assert listed(by_name) == {catalog.counts.uid, catalog.raw.uid}


def test_feature_pages_and_values_list_their_artifacts(
    client: TestClient, catalog: Catalog, annotated: Annotations
) -> None:
    page = ok(client, f"/features/{annotated.temperature.uid}")
    assert "temperature" in page and "float" in page and "°C" in page
    assert f'href="/schemas/{annotated.schema.uid}"' in page  # a schema it is a member of
    assert listed(page) == {catalog.counts.uid}
    assert href(page, "feature-artifacts") == "/artifacts?temperature__isnull=false"
    # a value on the artifact page links to the artifacts with that value
    artifact = section(ok(client, f"/artifacts/{catalog.counts.uid}"), "features")
    values = [
        html_lib.unescape(v) for v in re.findall(r'class="value-link" href="([^"]+)"', artifact)
    ]
    assert "/artifacts?temperature=37.5" in values and "/artifacts?passed=true" in values
    assert "/artifacts?genes=CD3E" in values and "/artifacts?sampled_on=2026-12-01" in values
    assert len(values) == 8  # every value but the categorical label (linked to its page)
    for url in values:
        assert listed(ok(client, url)) == {catalog.counts.uid}, url
    # numbers and booleans typed in the address are compared as the feature's dtype
    assert listed(ok(client, "/artifacts?temperature__gt=30")) == {catalog.counts.uid}
    assert listed(ok(client, "/artifacts?temperature__lt=30")) == set()
    assert listed(ok(client, "/artifacts?cells=T cell")) == {catalog.counts.uid}
    hostile = ok(client, f"/features/{annotated.hostile_feature.uid}")
    assert f"note {ESCAPED}" in hostile and f"about {ESCAPED}" in hostile
    assert listed(ok(client, href(hostile, "feature-artifacts"))) == {catalog.counts.uid}
    categorical = ok(client, f"/features/{annotated.cells.uid}")
    assert f'href="/labels/{annotated.cell_type.uid}"' in categorical  # the type of its values
    response = client.get("/artifacts?temperature__gt=hot")
    assert response.status_code == 400
    assert "temperature" in response.text and "number" in response.text


def test_schema_page_lists_members_and_validated_artifacts(
    client: TestClient, catalog: Catalog, annotated: Annotations
) -> None:
    page = ok(client, f"/schemas/{annotated.schema.uid}")
    members = section(page, "members")
    for feature in (annotated.temperature, annotated.cells):
        assert f'href="/features/{feature.uid}"' in members
    assert "cat[ULabel[CellType]]" in members and f"obs {ESCAPED}" in page
    assert listed(page) == {catalog.counts.uid}
    everything = href(page, "schema-artifacts")
    assert everything == "/artifacts?" + urlencode({"schemas__name": annotated.schema.name})
    assert listed(ok(client, everything)) == {catalog.counts.uid}


def test_collection_pages_members_and_versions(
    client: TestClient, catalog: Catalog, annotated: Annotations, monkeypatch: pytest.MonkeyPatch
) -> None:
    overview = ok(client, "/")
    assert f'href="/collections/{annotated.collection.uid}"' in section(
        overview, "recent-collections"
    )
    assert 'href="/collections"' in overview
    listing = ok(client, "/collections")
    assert f'href="/collections/{annotated.collection.uid}"' in listing
    assert annotated.first_collection.uid not in listing  # latest versions only
    page = ok(client, f"/collections/{annotated.collection.uid}")
    assert "sets/reads" in page and ESCAPED in page
    members = section(page, "members")
    assert members.index(catalog.raw.uid) < members.index(catalog.counts.uid)  # in order
    versions = section(page, "versions")
    assert f'href="/collections/{annotated.first_collection.uid}"' in versions
    old = ok(client, f"/collections/{annotated.first_collection.uid}")
    assert catalog.raw.uid in section(old, "members")
    assert catalog.counts.uid not in section(old, "members")
    latest = ok(client, f"/collections/{annotated.collection.stem}")  # the stem: the latest
    assert catalog.counts.uid in section(latest, "members")
    # members page by position
    from lakeline.ui import notes as ui_notes

    monkeypatch.setattr(ui_notes, "MEMBERS_PAGE", 1)
    first = ok(client, f"/collections/{annotated.collection.uid}")
    assert catalog.raw.uid in section(first, "members")
    assert catalog.counts.uid not in section(first, "members")
    second = ok(client, href(first, "next-members"))
    assert catalog.counts.uid in section(second, "members")
    assert catalog.raw.uid not in section(second, "members")


def test_unknown_or_malformed_annotation_uids_are_404_pages(
    client: TestClient, annotated: Annotations
) -> None:
    for url in (
        "/labels/AAAAAAAAAAAAAAAA",
        "/labels/bad!",
        "/features/AAAAAAAAAAAAAAAA",
        "/schemas/AAAAAAAAAAAAAAAA",
        "/collections/AAAAAAAAAAAA",
        "/collections/AAAAAAAAAAAAAAAA",
        f"/collections/{annotated.collection.uid}x",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Not found" in response.text and "Traceback" not in response.text
    bad = client.get(f"/collections/{annotated.collection.uid}?after=x")
    assert bad.status_code == 400 and "after must be a whole number" in bad.text
    bad = client.get("/collections?before=x")
    assert bad.status_code == 400 and "before must be a whole number" in bad.text


def _offset(sql: str, params: Any) -> int:
    found = re.search(r"OFFSET (\?|%\((\w+)\)s|\d+)", sql)
    if found is None:
        return 0
    if found.group(1) == "?":
        return int(params[-1])
    if found.group(2):
        return int(params[found.group(2)])
    return int(found.group(1))


def test_no_page_view_counts_artifacts_or_skips_rows(
    client: TestClient, catalog: Catalog, annotated: Annotations, instance: Instance
) -> None:
    """Large instances stay fast: after the first overview (whose counts are then reused), no
    page counts the artifacts table and no list skips rows with OFFSET (keyset pages)."""
    from sqlalchemy import event

    ok(client, "/")
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        statements.append((sql, params))

    first = ok(client, "/artifacts?sort=-size&limit=1")
    found = re.search(r'id="next-page" href="([^"]+)"', first)
    assert found is not None
    pages = [
        "/",
        "/artifacts",
        found.group(1).replace("&amp;", "&"),
        "/artifacts?key__startswith=out/",
        "/artifacts?ulabels__name=B cell",
        "/artifacts?temperature__gt=30",
        "/artifacts?view=folders",
        f"/artifacts/{catalog.counts.uid}",
        f"/labels/{annotated.b_cell.uid}",
        f"/labels/{annotated.cell_type.uid}",
        f"/features/{annotated.temperature.uid}",
        f"/schemas/{annotated.schema.uid}",
        "/collections",
        f"/collections/{annotated.collection.uid}",
        "/labels",
        "/features?q=temperature",
        "/runs",
        f"/runs/{catalog.align.uid}",
    ]
    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        for url in pages:
            ok(client, url)
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    assert len(statements) > len(pages)
    counting = [
        sql
        for sql, _ in statements
        if re.search(r"count\(", sql, re.I) and re.search(r"FROM artifacts\b", sql)
    ]
    assert counting == []
    skipping = [sql for sql, params in statements if _offset(sql, params) > 0]
    assert skipping == []


def test_label_and_feature_lists_page_by_name_and_search(
    client: TestClient, annotated: Annotations, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeline.ui import queries

    labels = ok(client, "/labels")
    assert f'href="/labels/{annotated.cell_type.uid}"' in labels and "label type" in labels
    assert ESCAPED in labels and 'href="/labels"' in labels  # nav link
    found = ok(client, "/labels?q=cell")
    table = found[found.index('id="registry"') :]
    assert "T cell" in table and "B cell" in table
    assert f'href="/labels/{annotated.hostile_label.uid}"' not in table
    features = ok(client, "/features?q=temperature")
    assert f'href="/features/{annotated.temperature.uid}"' in features and "float" in features
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    for path, model in (("labels", ll.ULabel), ("features", ll.Feature)):
        seen: list[str] = []
        url: str | None = f"/{path}"
        while url is not None:
            html = ok(client, url)
            table = html[html.index('id="registry"') :]
            seen += re.findall(rf'href="/{path}/(\w+)"', table.split("</table>")[0])
            more = re.search(r'id="next-page" href="([^"]+)"', html)
            url = html_lib.unescape(more.group(1)) if more else None
        expected = {r.uid for r in model.filter().all()}
        if path == "labels":  # a label's row also links its type
            assert set(seen) == expected, path
        else:
            assert sorted(seen) == sorted(expected), path
    bad = client.get("/labels?after=nonsense")
    assert bad.status_code == 400 and "malformed page cursor" in bad.text


lab_site, lab, lab_instance = modules_lab.lab_site, modules_lab.lab, modules_lab.lab_instance


def test_schema_module_records_as_labels_and_values(lab_instance: Instance, tmp_path: Path) -> None:
    """Records of a schema module's label registry (the tests' lakeline-lab): a plain label
    and a `cat[lab.Biosample]` value show on the artifact page, the value links its artifacts."""
    from lakeline_lab.models import Biosample

    ll.save([Biosample(name="S1"), Biosample(name=XSS)])
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")
    a = ll.Artifact(tmp_path / "a.csv", key="a.csv").save()
    ll.Artifact(tmp_path / "b.csv", key="b.csv").save()
    ll.Feature(name="sample", dtype="cat[lab.Biosample]").save()
    a.labels.add(Biosample.get(name=XSS))
    a.features.add_values({"sample": "S1"})
    with TestClient(create_app(lab_instance.name), base_url="http://127.0.0.1") as client:
        page = ok(client, f"/artifacts/{a.uid}")
        features = section(page, "features")
        assert "cat[lab.Biosample]" in features and "S1" in features
        labels = section(page, "labels")
        assert "lab.Biosample" in labels and ESCAPED in labels and "no labels" not in labels
        links = re.findall(r'class="value-link" href="([^"]+)"', features)
        assert links == ["/artifacts?sample=S1"]
        assert listed(ok(client, links[0])) == {a.uid}
