"""`save_vitessce_config`: a Vitessce view config, validated, stored as a JSON artifact whose
run used the artifacts the config shows.

Validation uses Vitessce's own config schema, vendored as JSON Schema next to this module
(`vitessce-config.schema.json`: generated from the npm package @vitessce/schemas, MIT, with
zod-to-json-schema; its `x-source` names the versions). The `vitessce` Python package is not
used: 3.8.4 pins zarr 2 and later releases need Python 3.12.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from lakeline.errors import InvalidValue, UnsupportedObject

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Artifact

SCHEMA_FILE = Path(__file__).with_name("vitessce-config.schema.json")
TRANSFORM_KEY = "lakeline.integrations.save_vitessce_config"
_AWS_VIRTUAL = re.compile(r"^([^/]+)\.s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$")
_AWS_PATH = re.compile(r"^s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$")


@cache
def vitessce_schema() -> dict[str, Any]:
    """The vendored JSON Schema: one definition per config version (1.0.0 to 1.0.18)."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return schema


def save_vitessce_config(
    config: Mapping[str, Any] | Any, *, description: str, key: str | None = None
) -> Artifact:
    """Validate a Vitessce view config and store it as a JSON artifact; return the artifact.

    `config`: a dict or an object with `to_dict()` (`vitessce.VitessceConfig`). Every file URL
    in it must name an artifact of the current instance: its location (local path, `file://`,
    `s3://`, or the http(s) form of an S3 object, presigned or not) or its key. The config is
    saved by a run of the transform `lakeline.integrations.save_vitessce_config` (a child of
    the current run, if any) that used those artifacts, so the view is linked to its data.
    """
    from lakeline.instance import current
    from lakeline.models import Artifact

    instance = current()
    data = _as_dict(config)
    validate_vitessce_config(data)
    used = _referenced_artifacts(data, instance)
    stored = Artifact(data, key=key, description=description, format="json", kind="vitessce")
    return _save_in_run(stored, used, description, key, instance)


def validate_vitessce_config(config: Mapping[str, Any]) -> None:
    """Raise `InvalidValue` naming the first problem when `config` breaks Vitessce's schema
    for the version it declares."""
    from lakeline.formats.registry import require

    jsonschema = require("jsonschema", "vitessce")
    definitions = vitessce_schema()["definitions"]
    version = config.get("version")
    if version not in definitions:
        raise InvalidValue(
            f"Vitessce config version {version!r} is not one of the known versions "
            f"{', '.join(definitions)}"
        )
    validator = jsonschema.Draft7Validator(definitions[version])
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "the top level"
        raise InvalidValue(
            f"Vitessce config (version {version}) does not match Vitessce's schema at "
            f"{where}: {error.message}"
        )


def _as_dict(config: Any) -> dict[str, Any]:
    """A JSON copy of the config (what JSON cannot hold is refused here, not at save)."""
    data = config.to_dict() if callable(getattr(config, "to_dict", None)) else config
    if isinstance(data, Mapping):
        try:
            copied: dict[str, Any] = json.loads(json.dumps(dict(data)))
        except (TypeError, ValueError) as exc:
            raise InvalidValue(f"the Vitessce config is not JSON: {exc}") from exc
        return copied
    raise UnsupportedObject(
        f"save_vitessce_config takes a config dict or an object with to_dict() "
        f"(vitessce.VitessceConfig), not {type(config).__name__}"
    )


def _file_urls(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dataset uid, url) of every file with a URL (files without one carry inline data)."""
    return [
        (str(dataset.get("uid")), str(file["url"]))
        for dataset in config.get("datasets", [])
        for file in dataset.get("files", [])
        if file.get("url")
    ]


def _referenced_artifacts(config: Mapping[str, Any], instance: Instance) -> list[Artifact]:
    found: dict[int, Artifact] = {}
    for dataset, url in _file_urls(config):
        artifact = artifact_for_url(url, instance)
        if artifact is None:
            raise InvalidValue(
                f"file {url!r} of Vitessce dataset {dataset!r} is not an artifact of this "
                "instance: save it first and use the artifact's location or key"
            )
        found.setdefault(artifact.id, artifact)
    return list(found.values())


def artifact_for_url(url: str, instance: Instance) -> Artifact | None:
    """The artifact of `instance` whose bytes `url` names (any version), or whose key it is
    (latest)."""
    from lakeline.artifacts.locate import storage_containing
    from lakeline.models import Artifact
    from lakeline.query import QuerySet

    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        location = _s3_location(parts.netloc, unquote(parts.path), url, instance)
    elif parts.scheme == "file":
        location = unquote(parts.path)
    else:
        location = url.split("?", 1)[0] if parts.scheme else url
    location = location.rstrip("/") if location else location
    if location:
        inside = storage_containing(location, instance)
        if inside is not None:
            storage, store_key = inside
            match = (
                QuerySet(Artifact, instance)
                .filter(storage_id=storage.id, store_key=store_key, is_latest=None)
                .order_by("-id")
                .first()
            )
            if match is not None:
                return match
    if not parts.scheme:
        return QuerySet(Artifact, instance).filter(key=url.strip("/")).first()
    return None


def _s3_location(host: str, path: str, url: str, instance: Instance) -> str | None:
    """`s3://bucket/key` for an http(s) URL of an S3 object: AWS virtual-hosted or path
    style, or a storage's own `endpoint_url` (a moto or MinIO server)."""
    path = path.lstrip("/")
    virtual = _AWS_VIRTUAL.match(host)
    if virtual:
        return f"s3://{virtual.group(1)}/{path}"
    if _AWS_PATH.match(host):
        return f"s3://{path}"
    bare = url.split("?", 1)[0]
    for storage in instance.storages():
        options = instance.storage_options(storage)
        client = options.get("client_kwargs") or {}
        endpoint = str(options.get("endpoint_url") or client.get("endpoint_url") or "")
        endpoint = endpoint.rstrip("/")
        if storage.root.startswith("s3://") and endpoint and bare.startswith(endpoint + "/"):
            return f"s3://{unquote(bare[len(endpoint) + 1 :])}"
    return None


def _save_in_run(
    stored: Artifact, used: list[Artifact], description: str, key: str | None, instance: Instance
) -> Artifact:
    from lakeline.lineage.tracked import tracked
    from lakeline.lineage.usage import note_use

    def save_vitessce_config(description: str, key: str | None) -> Artifact:
        for artifact in used:
            note_use(artifact, instance, role="vitessce")
        return stored.save()

    return tracked(key=TRANSFORM_KEY)(save_vitessce_config)(description, key)
