"""`artifact.describe()` and `lakeline describe KEY`: an artifact as a rich tree (key,
version, storage, run and transform, features, labels, schemas)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

if TYPE_CHECKING:
    from rich.tree import Tree

    from lakeline.instance import Instance
    from lakeline.models import Artifact


def _text(value: Any) -> str:
    """Stored text made safe to print: control characters escaped."""
    from lakeline.storage.keys import CONTROL

    return CONTROL.sub(lambda match: repr(match.group())[1:-1], str(value))


def _line(label: str, value: Any, style: str = "bold") -> Any:
    from rich.text import Text

    return Text.assemble((label, style), " ", _text(value))


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return _text(value.isoformat() if hasattr(value, "isoformat") else value)


def annotation_runs(session: Any, artifact_id: int) -> dict[str | int, list[str]]:
    """The runs that added the artifact's annotations: {feature name: run uids} for feature
    values and labels of a feature, {label id: run uids} for plain labels."""
    from lakeline.models import ArtifactULabel, Feature, FeatureValue, Run

    by_feature = (
        select(Feature.name, Run.uid)
        .join(FeatureValue, FeatureValue.feature_id == Feature.id)
        .join(Run, Run.id == FeatureValue.run_id)
        .where(FeatureValue.artifact_id == artifact_id)
    )
    by_label = (
        select(Feature.name, ArtifactULabel.ulabel_id, Run.uid)
        .select_from(ArtifactULabel)
        .join(Run, Run.id == ArtifactULabel.run_id)
        .outerjoin(Feature, Feature.id == ArtifactULabel.feature_id)
        .where(ArtifactULabel.artifact_id == artifact_id)
    )
    found: dict[str | int, set[str]] = {}
    for name, uid in session.execute(by_feature):
        found.setdefault(name, set()).add(uid)
    for name, label_id, uid in session.execute(by_label):
        found.setdefault(label_id if name is None else name, set()).add(uid)
    return {key: sorted(uids) for key, uids in found.items()}


def _runs_text(by_run: dict[str | int, list[str]], key: str | int) -> str:
    uids = by_run.get(key)
    return f" (run {', '.join(uids)})" if uids else ""


def describe_tree(artifact: Artifact, instance: Instance) -> Tree:
    """The artifact (a record of `instance`) as a rich Tree."""
    from rich.tree import Tree

    from lakeline.annotations.links import plain_labels
    from lakeline.annotations.values import collect_values
    from lakeline.artifacts.locate import artifact_url
    from lakeline.models import (
        ArtifactSchema,
        ArtifactULabel,
        Feature,
        Run,
        Schema,
        Storage,
        Transform,
        ULabel,
    )

    if artifact.id is None:
        from lakeline.errors import AnnotationError

        raise AnnotationError("save the artifact before describing it: describe() shows records")
    version = f"{artifact.version_number}" + (f" ({artifact.version})" if artifact.version else "")
    latest = "" if artifact.is_latest else " (not the latest)"
    tree = Tree(_line("Artifact", artifact.key or artifact.uid, "bold cyan"))
    tree.add(_line("uid", artifact.uid))
    tree.add(_line("version", version + latest))
    details = [("size", artifact.size), ("hash", f"{artifact.hash_type}:{artifact.hash}"),
               ("otype", artifact.otype), ("description", artifact.description)]  # fmt: skip
    for label, value in details:
        if value is not None and value != "None:None":
            tree.add(_line(label, value))
    with instance.sessions.read() as session:
        storage = session.get(Storage, artifact.storage_id)
        if storage is not None:
            where = "in place" if artifact.in_place else "stored"
            tree.add(_line("storage", f"{storage.root} ({where}: {artifact.store_key})"))
        if artifact.available is False:
            tree.add(
                _line(
                    "reference to", f"{artifact_url(artifact, instance)} (lakeline holds no bytes)"
                )
            )
        if artifact.run_id is not None:
            run = session.get(Run, artifact.run_id)
            if run is not None:
                transform = session.get(Transform, run.transform_id)
                what = f" of {transform.kind} {transform.key}" if transform is not None else ""
                tree.add(_line("run", f"{run.uid} ({run.status}){what}"))
        values = collect_values(session, [artifact.id]).get(artifact.id, {})
        features = {
            f.name: f for f in session.scalars(select(Feature).where(Feature.name.in_(values)))
        }
        plain = (
            select(ULabel, ULabel.type_id)
            .join(ArtifactULabel, ArtifactULabel.ulabel_id == ULabel.id)
            .where(ArtifactULabel.artifact_id == artifact.id, ArtifactULabel.feature_id.is_(None))
        )
        labels = [label for label, _ in session.execute(plain.order_by(ULabel.name))]
        module_labels = plain_labels(session, artifact.id)
        type_ids = {label.type_id for label in labels if label.type_id is not None}
        types = {
            t.id: t.name for t in session.scalars(select(ULabel).where(ULabel.id.in_(type_ids)))
        }
        by_run = annotation_runs(session, artifact.id)
        schemas = session.execute(
            select(ArtifactSchema.slot, Schema)
            .join(Schema, Schema.id == ArtifactSchema.schema_id)
            .where(ArtifactSchema.artifact_id == artifact.id)
            .order_by(ArtifactSchema.slot)
        ).all()
    if values:
        branch = tree.add(_line("features", ""))
        for name, value in values.items():
            feature = features[name]
            unit = f", {feature.unit}" if feature.unit else ""
            text = f"({feature.dtype}{unit}) {_value_text(value)}{_runs_text(by_run, name)}"
            branch.add(_line(name, text, "green"))
    if labels or module_labels:
        branch = tree.add(_line("labels", ""))
        for label in labels:
            kind = f" ({types[label.type_id]})" if label.type_id in types else ""
            branch.add(_line(label.name, kind.strip() + _runs_text(by_run, label.id), "magenta"))
        for registry, name in module_labels:
            branch.add(_line(name, f"({registry})", "magenta"))
    if schemas:
        branch = tree.add(_line("schemas", ""))
        for slot, schema in schemas:
            about = f"{schema.name} ({schema.otype or 'any'}, {schema.n_members} features)"
            branch.add(_line(slot or "-", about))
    return tree


def describe(artifact: Artifact, instance: Instance) -> None:
    """Print the artifact's tree."""
    from rich.console import Console

    Console(highlight=False).print(describe_tree(artifact, instance))
