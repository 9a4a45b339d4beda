"""redun File values on S3 (the suite's moto endpoint), imported as lineage."""

from __future__ import annotations

import lakeline as ll
import pytest
import redun_flows as rf
from lakeline.instance import Instance
from lakeline.testing_servers import S3Server
from lakeline_redun import import_redun
from redun import File
from redun_project import Flow


def test_s3_files_become_artifacts(
    instance: Instance,
    flow: Flow,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import s3fs

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)  # redun's and lakeline's s3fs clients read these
    s3fs.S3FileSystem.clear_instance_cache()
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="in/raw.txt", Body=b"reads from s3\n")
    src, dest = f"s3://{s3_bucket}/in/raw.txt", f"s3://{s3_bucket}/out/copy.txt"

    flow.run(rf.s3_copy(File(src), dest))
    assert client.get_object(Bucket=s3_bucket, Key="out/copy.txt")["Body"].read() == (
        b"READS FROM S3\n"
    )
    result = import_redun(str(flow.db))
    assert result.jobs == 1 and not result.missing

    run = ll.Run.get(engine="redun", engine_ref__ne=result.executions[0], parent_id__isnull=False)
    assert run.transform.key == "llt.s3_copy" and run.status == "completed"
    used = run.inputs.all()
    assert len(used) == 1 and used[0].load() == "reads from s3\n"  # content hashed by lakeline
    made = ll.Artifact.filter(run_id=run.id).all()
    assert len(made) == 1 and made[0].load() == "READS FROM S3\n"
    assert run.params["src"]["path"] == src and run.params["src"]["redun_hash"]
    # importing again changes nothing
    before = ll.Artifact.filter(is_latest=None).count()
    import_redun(str(flow.db))
    assert ll.Artifact.filter(is_latest=None).count() == before


def test_s3_files_that_cannot_be_read_are_references(
    instance: Instance,
    flow: Flow,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import s3fs
    from lakeline.storage import roots

    with monkeypatch.context() as creds:
        for name, value in s3_server.env().items():
            creds.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        s3_server.client().put_object(Bucket=s3_bucket, Key="in/raw.txt", Body=b"words\n")
        src, dest = f"s3://{s3_bucket}/in/raw.txt", f"s3://{s3_bucket}/out/copy.txt"
        flow.run(rf.main(File("raw.txt")))
        flow.run(rf.s3_copy(File(src), dest))
    # imported where there are no credentials for the bucket (nor a server to reach)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(roots, "_fs_cache", {})
    s3fs.S3FileSystem.clear_instance_cache()

    result = import_redun(str(flow.db))
    assert result.jobs == 7 and len(result.executions) == 2
    assert ll.Run.filter(engine="redun", status="completed").count() == 9  # every run finished
    copy = ll.Run.get(engine="redun", transform__key="llt.s3_copy", parent_id__isnull=False)
    (used,) = copy.inputs.all()
    (made,) = ll.Artifact.filter(run_id=copy.id).all()
    assert (used.location, made.location) == (src, dest)
    assert used.available is False and made.available is False  # by location: no bytes read
    assert ll.Artifact.get(key="out/total.txt").load() == "8"  # local files as usual
    warnings = [r.getMessage() for r in caplog.records if r.name == "lakeline.redun"]
    assert len(warnings) == 2 and all("recorded by location" in w for w in warnings)


def test_an_s3_file_overwritten_after_the_job_that_read_it_keeps_its_bytes(
    instance: Instance,
    flow: Flow,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job reads an object that a later job overwrites: the job's input is recorded with
    the bytes it read, never with the later job's (an object has no stat to compare)."""
    import s3fs

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="in/raw.txt", Body=b"reads from s3\n")
    src, dest = f"s3://{s3_bucket}/in/raw.txt", f"s3://{s3_bucket}/out/copy.txt"

    flow.run(rf.s3_copy_then_scribble(File(src), dest), live=True)
    body = client.get_object(Bucket=s3_bucket, Key="in/raw.txt")["Body"].read()
    assert body == b"overwritten after the job that read it\n"
    run = ll.Run.get(engine="redun", transform__key="llt.s3_copy")
    used = run.inputs.all()
    assert len(used) == 1
    overwritten = ll.Artifact.filter(key=used[0].key, is_latest=None)
    assert [a.uid for a in overwritten if a.hash == used[0].hash] == [used[0].uid]
    copy = ll.Artifact.get(run_id=run.id)
    assert copy.load() == "READS FROM S3\n"
    assert used[0].size == len(b"reads from s3\n")  # the bytes it read
