"""Values that are not files, files that cannot be reached, files a task only read."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lakeline as ll
import pf_values
import pytest
from lakeline.instance import Instance
from test_prefect_flows import ENGINE


@pytest.fixture
def no_s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 with no credentials (and no server to reach): every request fails."""
    import s3fs
    from lakeline.storage import roots

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(roots, "_fs_cache", {})  # no filesystem made with other credentials
    s3fs.S3FileSystem.clear_instance_cache()


def test_urls_and_an_unreachable_asset_do_not_stop_the_recording(
    workdir: Path, instance: Instance, no_s3_credentials: None, caplog: pytest.LogCaptureFixture
) -> None:
    target = workdir / "out" / "items.csv"
    assert pf_values.catalog_items([1, 2, 3], target) == target
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status == "completed"
    steps = workflow.children.all()
    assert len(steps) == 5 and all(s.status == "completed" for s in steps)  # 6 runs in all
    table = ll.Artifact.get(key="out/items.csv")
    assert table.run is not None and table.run.transform.key == "tabulate"
    assert table.load()["url"].tolist() == [f"https://example.org/items/{i}" for i in (1, 2, 3)]
    locations = [a.location for a in ll.Artifact.filter().all()]
    assert not [loc for loc in locations if "example.org" in loc]  # URLs in values: no files
    fetches = [s for s in steps if s.transform.key == "fetch"]
    assert len(fetches) == 3
    assert all(not s.inputs.all() and not ll.Artifact.filter(run_id=s.id).all() for s in fetches)
    (publish,) = [s for s in steps if s.transform.key == "publish"]
    (asset,) = ll.Artifact.filter(run_id=publish.id).all()  # by location: no bytes to hash
    assert asset.location == pf_values.UNREACHABLE and asset.available is False
    assert {a.key for a in publish.inputs.all()} == {"out/items.csv"}
    assert not [r for r in caplog.records if r.name == "lakeline.prefect"]  # nothing failed


def test_a_task_returning_a_file_it_only_read_is_not_its_producer(
    workdir: Path, instance: Instance
) -> None:
    (workdir / "data").mkdir()
    settings = workdir / "data" / "settings.txt"
    settings.write_text("verbose = yes\n")
    time.sleep(0.1)  # the source is older than the flow (by more than lakeline's clock slack)
    target = workdir / "out" / "applied.txt"
    assert pf_values.configured(target) == target
    source = ll.Artifact.get(key="data/settings.txt")
    assert source.run_id is None  # a source, only read: nobody produced it
    reader = ll.Run.get(engine=ENGINE, transform__key="settings_file")
    assert [a.key for a in reader.inputs.all()] == ["data/settings.txt"]
    applied = ll.Artifact.get(key="out/applied.txt")
    assert applied.run is not None and applied.run.transform.key == "apply_settings"
    assert [a.key for a in applied.run.inputs.all()] == ["data/settings.txt"]


def test_an_unreachable_parameter_is_one_warning_for_that_value_only(
    workdir: Path, instance: Instance, no_s3_credentials: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "lakeline.prefect")
    src, target = "s3://lakeline-unreachable/raw/source.csv", workdir / "out" / "noted.txt"
    assert pf_values.noted_source(src, target) == target
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    (step,) = workflow.children.all()
    assert workflow.status == step.status == "completed"
    assert ll.Artifact.get(key="out/noted.txt").run_id == step.id
    assert not step.inputs.all()  # neither an input nor an output: nothing tells which
    warnings = [r.getMessage() for r in caplog.records if r.name == "lakeline.prefect"]
    assert len(warnings) == 1 and src in warnings[0] and "\n" not in warnings[0]


def test_a_record_passed_to_a_task(
    workdir: Path, instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    """Prefect hashes a task's inputs for its cache key (cloudpickle for a record): the key is
    made, the task reads the record from its instance, and the record loaded again in a
    second flow run is served from the cache."""
    (workdir / "in.txt").write_text("record bytes")
    uid = ll.Artifact(workdir / "in.txt", key="in/record.txt").save().uid
    for _ in range(2):
        assert pf_values.read_record(ll.Artifact.get(uid)) == "in/record.txt=record bytes"
    assert not [r.getMessage() for r in caplog.records if "cache key" in r.getMessage()]
    steps = ll.Run.filter(engine=ENGINE, transform__key="record_text").all()
    assert sorted(s.status for s in steps) == ["cached", "completed"]
