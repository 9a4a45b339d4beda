"""What the UI reads about annotations and collections: an artifact's features, labels,
schemas and collections; label, feature, schema and collection pages; feature values typed in
the query string.

Every list is bounded (`SHORT_LIST`, `LIST_LIMIT`, keyset pages of members), every query goes
through an index on the link tables (`artifact_id`, `ulabel_id`, `feature_id`,
`collection_id`), and the artifacts carrying a label, a feature or a schema are an
`artifact_page` of the API's lookups (`ulabels__uid=`, `<feature>__isnull=false`,
`schemas__uid=`), the same query the artifacts list runs for its address.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from lakeline.errors import DoesNotExist, QueryError
from lakeline.models import (
    Artifact,
    ArtifactSchema,
    ArtifactULabel,
    Collection,
    CollectionArtifact,
    Feature,
    FeatureValue,
    Schema,
    SchemaFeature,
    ULabel,
)
from lakeline.ui.queries import RESERVED, Page, artifact_page

SHORT_LIST = 20  # artifacts shown on a label, feature or schema page (the list has the rest)
LIST_LIMIT = 200  # labels of a type, schemas of a feature, collections of an artifact
MEMBERS_PAGE = 200  # members of a collection per page
_UID16 = re.compile(r"^[0-9A-Za-z]{16}$")
_STEM_OR_UID = re.compile(r"^[0-9A-Za-z]{12}(?:[0-9A-Za-z]{4})?$")
_ANNOTATION_HEADS = ("ulabels", "schemas")
_LINKED_VALUES = ("str", "int", "float", "num", "bool", "date", "datetime")


def _session() -> Any:
    from lakeline.instance import current

    return current().sessions.read()


def find(model: type[ULabel] | type[Feature] | type[Schema], uid: str) -> Any:
    """The label, feature or schema with this uid; `DoesNotExist` (a 404 page) otherwise."""
    what = {"ULabel": "label"}.get(model.__name__, model.__name__.lower())
    if not _UID16.match(uid):
        raise DoesNotExist(f"{uid!r} is not a {what} uid")
    found = model.filter(uid=uid).first()
    if found is None:
        raise DoesNotExist(f"no {what} with uid {uid!r} in this instance")
    return found


def find_collection(uid: str) -> Collection:
    """The collection version with this uid, or the latest of this stem."""
    if not _STEM_OR_UID.match(uid):
        raise DoesNotExist(f"{uid!r} is not a collection uid")
    if len(uid) == 16:
        found = Collection.filter(uid=uid).first()
    else:
        found = Collection.filter(stem=uid, is_latest=True).first()
    if found is None:
        raise DoesNotExist(f"no collection with uid {uid!r} in this instance")
    return found


# -- feature lookups in the query string ------------------------------------------------------


def queryable(name: str) -> bool:
    """Whether an artifacts lookup can name the feature `name` (a column or relation of
    Artifact of the same name wins, `__` splits a lookup, the page's own options are not
    lookups)."""
    from lakeline.query import _field_names, relations

    return not (
        "__" in name
        or name in RESERVED
        or name in _ANNOTATION_HEADS
        or name in _field_names(Artifact)
        or name in relations(Artifact)
    )


def _typed(base: str, text: str) -> Any:
    """A query-string value as the feature's dtype reads it (unchanged when it does not
    parse: the feature lookup then names the value that does not fit)."""
    stripped = text.strip()
    if base == "int" and re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if base in ("float", "num"):
        try:
            number = float(stripped)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if base == "bool" and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return text


def typed_lookups(lookups: dict[str, Any]) -> dict[str, Any]:
    """`lookups` with the values of numeric and boolean feature lookups read as numbers and
    booleans: the address carries text, the API compares a float feature with numbers."""
    from lakeline.annotations.dtypes import parse_dtype

    heads = {name.split("__")[0] for name in lookups}
    heads = {head for head in heads if queryable(head)}
    if not heads:
        return lookups
    with _session() as session:
        rows = session.execute(
            select(Feature.name, Feature.dtype).where(Feature.name.in_(heads))
        ).all()
    bases = {name: parse_dtype(dtype).base for name, dtype in rows}
    out = dict(lookups)
    for name, value in lookups.items():
        parts = name.split("__")
        base = bases.get(parts[0])
        if base is None or base in ("str", "cat") or parts[-1] == "isnull":
            continue
        if isinstance(value, str):
            out[name] = _typed(base, value)
        elif isinstance(value, list):
            out[name] = [_typed(base, v) if isinstance(v, str) else v for v in value]
    return out


# -- one artifact ------------------------------------------------------------------------------


@dataclass
class Value:
    """One value of a feature as shown: its text, the label it is (categoricals), and the
    artifacts list of that value (when a lookup can name it)."""

    text: str
    label: ULabel | None = None
    url: str | None = None


@dataclass
class FeatureRow:
    feature: Feature
    values: list[Value]


@dataclass
class ArtifactNotes:
    """Everything annotating one artifact."""

    features: list[FeatureRow] = field(default_factory=list)
    labels: list[tuple[ULabel, ULabel | None]] = field(default_factory=list)  # label, type
    schemas: list[tuple[str, Schema]] = field(default_factory=list)  # slot, schema
    collections: list[Collection] = field(default_factory=list)
    more_collections: bool = False
    module_labels: list[tuple[str, str]] = field(default_factory=list)  # registry, name


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _value_url(feature: Feature, base: str, text: str) -> str | None:
    if base not in _LINKED_VALUES or not queryable(feature.name):
        return None
    return "/artifacts?" + urlencode([(feature.name, text)])


def artifact_notes(artifact: Artifact) -> ArtifactNotes:
    """The artifact's feature values (with dtypes), labels (with types), schemas (per slot)
    and the collection versions holding it, newest first."""
    from lakeline.annotations.dtypes import COLUMNS, parse_dtype, read_back

    notes = ArtifactNotes()
    columns = sorted(set(COLUMNS.values()))
    with _session() as session:
        values = session.execute(
            select(Feature, *(getattr(FeatureValue, c) for c in columns))
            .join(Feature, Feature.id == FeatureValue.feature_id)
            .where(FeatureValue.artifact_id == artifact.id)
            .order_by(Feature.name, FeatureValue.position)
        ).all()
        links = session.execute(
            select(ULabel, ArtifactULabel.feature_id)
            .join(ArtifactULabel, ArtifactULabel.ulabel_id == ULabel.id)
            .where(ArtifactULabel.artifact_id == artifact.id)
            .order_by(ULabel.name, ULabel.id)
        ).all()
        feature_ids = {f for _, f in links if f is not None}
        categorical = {
            f.id: f for f in session.scalars(select(Feature).where(Feature.id.in_(feature_ids)))
        }
        type_ids = {label.type_id for label, _ in links if label.type_id is not None}
        types = {t.id: t for t in session.scalars(select(ULabel).where(ULabel.id.in_(type_ids)))}
        notes.schemas = [
            (slot, schema)
            for slot, schema in session.execute(
                select(ArtifactSchema.slot, Schema)
                .join(Schema, Schema.id == ArtifactSchema.schema_id)
                .where(ArtifactSchema.artifact_id == artifact.id)
                .order_by(ArtifactSchema.slot)
            )
        ]
        holding = select(CollectionArtifact.collection_id).where(
            CollectionArtifact.artifact_id == artifact.id
        )
        collections = list(
            session.scalars(
                select(Collection)
                .where(Collection.id.in_(holding))
                .order_by(Collection.id.desc())
                .limit(LIST_LIMIT + 1)
            )
        )
        module_values, module_features = _module_notes(session, artifact, notes)
    rows: dict[str, FeatureRow] = {}
    for feature, *stored in values:
        dtype = parse_dtype(feature.dtype)
        value = read_back(dtype, stored[columns.index(dtype.column or "")])
        text = _value_text(value)
        row = rows.setdefault(feature.name, FeatureRow(feature, []))
        row.values.append(Value(text, url=_value_url(feature, dtype.base, text)))
    for label, feature_id in links:
        if feature_id is None:
            notes.labels.append((label, types.get(label.type_id or -1)))
        elif feature_id in categorical:
            feature = categorical[feature_id]
            rows.setdefault(feature.name, FeatureRow(feature, [])).values.append(
                Value(label.name, label=label)
            )
    for (_, name), names in sorted(module_values.items()):
        feature = module_features[name]
        by_name = queryable(name)  # a module record's name is a lookup value, as a label's
        urls = ["/artifacts?" + urlencode([(name, v)]) if by_name else None for v in names]
        rows[name] = FeatureRow(
            feature, [Value(v, url=u) for v, u in zip(names, urls, strict=True)]
        )
    notes.features = [rows[name] for name in sorted(rows)]
    notes.collections = collections[:LIST_LIMIT]
    notes.more_collections = len(collections) > LIST_LIMIT
    return notes


def _module_notes(
    session: Any, artifact: Artifact, notes: ArtifactNotes
) -> tuple[dict[tuple[int, str], list[str]], dict[str, Feature]]:
    """Records of schema modules' label registries on the artifact: its plain labels (into
    `notes`), and the names that are values of `cat[module.Registry]` features."""
    from lakeline.annotations.values import modules_mapped

    if not modules_mapped():
        return {}, {}
    from lakeline.annotations.links import collect, plain_labels

    values: dict[tuple[int, str], list[str]] = {}
    collect(session, [artifact.id], values)
    notes.module_labels = plain_labels(session, artifact.id)
    names = sorted({name for _, name in values})
    features = {f.name: f for f in session.scalars(select(Feature).where(Feature.name.in_(names)))}
    return values, features


# -- labels, features, schemas -----------------------------------------------------------------


def _carrying(lookup: dict[str, Any]) -> Page:
    return artifact_page(lookup, limit=SHORT_LIST)


def _unique_label_name(label: ULabel) -> bool:
    with _session() as session:
        n = session.scalar(
            select(func.count()).select_from(
                select(ULabel.id).where(ULabel.name == label.name).limit(2).subquery()
            )
        )
    return bool(n == 1)


@dataclass
class LabelPage:
    label: ULabel
    type: ULabel | None
    parents: list[ULabel]
    children: list[ULabel]
    records: list[ULabel]  # labels of this type (a label type)
    more_records: bool
    features: list[Feature]  # categorical features whose values are labels of this type
    artifacts: Page
    artifacts_url: str


def label_page(label: ULabel) -> LabelPage:
    """A label with its type, parents, children, records (a type) and carrying artifacts."""
    from lakeline.models import ULabelParent

    with _session() as session:
        kind = session.get(ULabel, label.type_id) if label.type_id is not None else None
        parents = select(ULabelParent.parent_id).where(ULabelParent.child_id == label.id)
        children = select(ULabelParent.child_id).where(ULabelParent.parent_id == label.id)
        by_name = select(ULabel).order_by(ULabel.name, ULabel.id).limit(LIST_LIMIT + 1)
        found_parents = list(session.scalars(by_name.where(ULabel.id.in_(parents))))
        found_children = list(session.scalars(by_name.where(ULabel.id.in_(children))))
        records = list(session.scalars(by_name.where(ULabel.type_id == label.id)))
        features: list[Feature] = []
        if label.is_type:
            dtypes = [f"cat[ULabel[{label.name}]]", f"list[cat[ULabel[{label.name}]]]"]
            features = list(
                session.scalars(
                    select(Feature)
                    .where(Feature.dtype.in_(dtypes))
                    .order_by(Feature.name)
                    .limit(LIST_LIMIT)
                )
            )
    head = "ulabels__type" if label.is_type else "ulabels"
    unique = _unique_label_name(label)
    lookup = (f"{head}__name", label.name) if unique else (f"{head}__uid", label.uid)
    return LabelPage(
        label=label,
        type=kind,
        parents=found_parents[:LIST_LIMIT],
        children=found_children[:LIST_LIMIT],
        records=records[:LIST_LIMIT],
        more_records=len(records) > LIST_LIMIT,
        features=features,
        artifacts=_carrying({f"{head}__uid": label.uid}),
        artifacts_url="/artifacts?" + urlencode([lookup]),
    )


@dataclass
class FeaturePage:
    feature: Feature
    dtype: str
    value_type: ULabel | None  # the label type of a categorical's values
    schemas: list[Schema]
    artifacts: Page | None  # None: no lookup can name the feature
    artifacts_url: str | None


def feature_page(feature: Feature) -> FeaturePage:
    """A feature with its dtype, the schemas holding it and the artifacts with a value."""
    from lakeline.annotations.dtypes import parse_dtype

    dtype = parse_dtype(feature.dtype)
    with _session() as session:
        holding = select(SchemaFeature.schema_id).where(SchemaFeature.feature_id == feature.id)
        schemas = list(
            session.scalars(
                select(Schema).where(Schema.id.in_(holding)).order_by(Schema.name).limit(LIST_LIMIT)
            )
        )
        value_type = None
        if dtype.type_name is not None:
            value_type = session.scalars(
                select(ULabel).where(ULabel.name == dtype.type_name, ULabel.is_type)
            ).first()
    artifacts = url = None
    if queryable(feature.name):
        artifacts = _carrying({f"{feature.name}__isnull": False})
        url = "/artifacts?" + urlencode([(f"{feature.name}__isnull", "false")])
    return FeaturePage(feature, dtype.text, value_type, schemas, artifacts, url)


@dataclass
class SchemaPage:
    schema: Schema
    members: list[tuple[str, Feature, bool]]
    artifacts: Page
    artifacts_url: str


def schema_page(schema: Schema) -> SchemaPage:
    """A schema with its members (slot, feature, required) and the artifacts validated
    against it."""
    return SchemaPage(
        schema=schema,
        members=schema.members,
        artifacts=_carrying({"schemas__uid": schema.uid}),
        artifacts_url="/artifacts?" + urlencode([("schemas__name", schema.name)]),
    )


# -- collections -------------------------------------------------------------------------------


@dataclass
class CollectionPage:
    collection: Collection
    versions: list[Collection]
    members: list[tuple[int, Artifact]]  # position, artifact
    next_after: int | None  # the last position shown, when more follow
    n_members: int


def collection_page(collection: Collection, after: int | None) -> CollectionPage:
    """A collection version, its versions and one keyset page of its members by position."""
    with _session() as session:
        query = (
            select(CollectionArtifact.position, Artifact)
            .join(Artifact, Artifact.id == CollectionArtifact.artifact_id)
            .where(CollectionArtifact.collection_id == collection.id)
        )
        if after is not None:
            query = query.where(CollectionArtifact.position > after)
        rows = session.execute(
            query.order_by(CollectionArtifact.position).limit(MEMBERS_PAGE + 1)
        ).all()
        n_members = session.scalar(
            select(func.count()).where(CollectionArtifact.collection_id == collection.id)
        )
    members = [(position, artifact) for position, artifact in rows[:MEMBERS_PAGE]]
    more = len(rows) > MEMBERS_PAGE
    return CollectionPage(
        collection=collection,
        versions=collection.versions.all(),
        members=members,
        next_after=members[-1][0] if more else None,
        n_members=int(n_members or 0),
    )


def member_counts(collections: list[Collection]) -> dict[int, int]:
    """Members per collection id, in one grouped query."""
    ids = [c.id for c in collections]
    if not ids:
        return {}
    with _session() as session:
        rows = session.execute(
            select(CollectionArtifact.collection_id, func.count())
            .where(CollectionArtifact.collection_id.in_(ids))
            .group_by(CollectionArtifact.collection_id)
        ).all()
    return {collection_id: int(n) for collection_id, n in rows}


# -- label and feature lists -------------------------------------------------------------------


@dataclass
class RegistryPage:
    """A page of labels or features by name (or the best matches of a search)."""

    rows: list[Any]
    types: dict[int, ULabel]  # the labels' types by id
    next_cursor: str | None


def registry_page(
    model: type[ULabel] | type[Feature], search: str | None, after: str | None
) -> RegistryPage:
    """Labels or features ordered by (name, id) in keyset pages; with `search`, the best
    `PAGE_SIZE` matches of the registry's search."""
    from sqlalchemy import and_, or_

    from lakeline.ui.queries import PAGE_SIZE, decode_cursor, encode_cursor

    rows: list[Any]
    if search:
        rows = list(model.filter().search(search, limit=PAGE_SIZE).all())
        more = False
    else:
        query = model.filter()
        if after:
            _, name, last_id = decode_cursor(after)
            if not isinstance(name, str):
                raise QueryError("malformed page cursor (after=): start again from the first page")
            beyond = or_(model.name > name, and_(model.name == name, model.id > last_id))
            query = query.filter(model.name >= name, beyond)
        rows = list(query.order_by("name", "id").limit(PAGE_SIZE + 1).all())
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    types: dict[int, ULabel] = {}
    if model is ULabel:
        type_ids = {r.type_id for r in rows if r.type_id is not None}
        if type_ids:
            types = {t.id: t for t in ULabel.filter(id__in=sorted(type_ids)).all()}
    cursor = encode_cursor([0, rows[-1].name, rows[-1].id]) if more else None
    return RegistryPage(rows, types, cursor)
