"""Saving Feature, ULabel and Schema records: one transaction for many, and a record whose
name equals an existing one (a label: within its type) is that record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lakeline.errors import AnnotationError, InvalidValue

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance
    from lakeline.models import Feature, Schema, ULabel
    from lakeline.models.base import Base


def check_name(registry: str, name: Any) -> str:
    """A record's name: a non-empty string without surrounding whitespace."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue(f"a {registry} needs a non-empty name, got {name!r}")
    if name != name.strip():
        raise InvalidValue(f"{registry} name {name!r} has surrounding whitespace: strip it")
    return name


def check_label_refs(
    name: str, type: Any, parents: Sequence[Any]
) -> tuple[ULabel | None, list[ULabel]]:
    """A label's type (a ULabel with `is_type`) and parents (ULabels), checked."""
    from lakeline.models import ULabel

    if type is not None and (not isinstance(type, ULabel) or not type.is_type):
        what = f"ULabel {type.name!r}" if isinstance(type, ULabel) else repr(type)
        raise AnnotationError(
            f"the type of label {name!r} must be a label type, got {what}: make one with "
            "ll.ULabel(name=..., is_type=True).save()"
        )
    for parent in parents:
        if not isinstance(parent, ULabel):
            raise AnnotationError(f"a parent of label {name!r} must be a ULabel, got {parent!r}")
    return type, list(parents)


def schema_members(
    name: str,
    features: Sequence[Any],
    optional: Sequence[Any],
    slots: Mapping[str, Sequence[Any]] | None,
) -> list[tuple[str, Feature | str, bool]]:
    """(slot, feature or name, required) per member, in order."""
    from lakeline.models import Feature

    def key(item: Any) -> str:
        if isinstance(item, Feature):
            return item.name
        if isinstance(item, str):
            return item
        raise AnnotationError(
            f"schema {name!r}: a member must be a Feature or a feature name, got {item!r}"
        )

    optional_names = {key(f) for f in optional}
    members: list[tuple[str, Feature | str, bool]] = []
    groups = [("", [*features, *(f for f in optional if key(f) not in map(key, features))])]
    groups += [(slot, list(items)) for slot, items in (slots or {}).items()]
    for slot, items in groups:
        seen: set[str] = set()
        for item in items:
            if key(item) in seen:
                raise AnnotationError(f"schema {name!r} lists feature {key(item)!r} twice")
            seen.add(key(item))
            members.append((slot, item, key(item) not in optional_names))
    return members


def save_records(records: Sequence[Base], instance: Instance) -> list[Base]:
    """Save Feature, ULabel and Schema records into `instance` in one transaction; each
    returned record is the saved one, or the existing record it duplicates."""
    from lakeline.db.session import check_own
    from lakeline.lineage.context import current_run_in
    from lakeline.models import Feature, Schema, ULabel

    for record in records:
        check_own(record, instance)
    run = current_run_in(instance)
    saver = _Saver(instance.user.id, None if run is None else run.id)
    kinds = (ULabel, Feature, Schema)
    for record in records:
        if not isinstance(record, kinds):
            raise AnnotationError(
                f"cannot save {record!r} with Features, ULabels and Schemas: save artifacts "
                "and collections in a call of their own"
            )
    _warn_similar(records, instance)
    with instance.sessions.write() as session:
        saver.session = session
        # label types first (labels name them), then labels, features (their dtype names
        # label types), schemas (they name features)
        saver.labels([r for r in records if isinstance(r, ULabel) and r.is_type])
        saver.labels([r for r in records if isinstance(r, ULabel) and not r.is_type])
        saver.features([r for r in records if isinstance(r, Feature)])
        saver.schemas([r for r in records if isinstance(r, Schema)])
    return [saver.saved.get(id(r), r) for r in records]


def _warn_similar(records: Sequence[Base], instance: Instance) -> None:
    """A SimilarNameWarning for new labels and features whose name is close to an existing
    one's (case, punctuation, a typo): one batched pass per registry (lakeline.validation)."""
    from lakeline.models import Feature, ULabel
    from lakeline.validation import check_new_names

    new: dict[type[Any], list[str]] = {ULabel: [], Feature: []}
    for record in records:
        if isinstance(record, (ULabel, Feature)) and record.id is None:
            new[type(record)].append(record.name)
    for model, names in new.items():
        if names:  # stacklevel 4: here, save_records, ULabel.save() or ll.save(), the user
            check_new_names(model, names, instance=instance, stacklevel=4)


class _Saver:
    """The state of one save: the session, who and which run, what each input became."""

    def __init__(self, user_id: int, run_id: int | None) -> None:
        self.user_id, self.run_id = user_id, run_id
        self.saved: dict[int, Any] = {}  # id(input) -> the record it is
        self.session: Session

    def _resolve(self, record: Any) -> Any:
        return self.saved.get(id(record), record)

    def _stamp(self, record: Any) -> None:
        record._ensure_uid()
        record.created_by_id = self.user_id
        record.run_id = self.run_id

    def _merge(self, records: Sequence[Any]) -> list[Any]:
        """Records saved before get their edits written; the rest is new."""
        from lakeline.db.session import merge_edits

        fresh = []
        for record in records:
            if record.id is not None:
                self.saved[id(record)] = merge_edits(self.session, record)
            else:
                fresh.append(record)
        if len(fresh) < len(records):
            self.session.flush()  # now: each kind's step ends by expunging the session
        return fresh

    def labels(self, labels: Sequence[ULabel]) -> None:
        from lakeline.db.rows import chunks, one_of
        from lakeline.ids import new_uids
        from lakeline.models import ULabel

        labels = self._merge(labels)
        if not labels:
            return
        for label in labels:
            kind = getattr(label, "_type", None)
            if kind is not None:
                kind = self._resolve(kind)
                if kind.id is None:
                    raise AnnotationError(
                        f"label {label.name!r}: its type {kind.name!r} is not saved; save it "
                        "first or in the same call"
                    )
                label.type_id = kind.id
        names = sorted({label.name for label in labels})
        known: dict[tuple[str, int | None], ULabel] = {}
        for chunk in chunks(names):
            stmt = select(ULabel).where(one_of(self.session, ULabel.name, chunk))
            for row in self.session.scalars(stmt):
                known[(row.name, row.type_id)] = row
        new: list[ULabel] = []
        for label in labels:
            key = (label.name, label.type_id)
            if key in known:
                self.saved[id(label)] = known[key]
                continue
            known[key] = label
            new.append(label)
        stamp = {"created_by_id": self.user_id, "run_id": self.run_id}
        for label, uid in zip(new, new_uids(len(new)), strict=True):
            label.__dict__.update(stamp, uid=label.__dict__.get("uid") or uid)  # as _stamp
        self._insert(ULabel, new)
        self._parents(labels)
        self.session.expunge_all()

    def _insert(self, model: type[Any], records: Sequence[Any]) -> None:
        insert_records(self.session, model, records)

    def _parents(self, labels: Sequence[ULabel]) -> None:
        from lakeline.models import ULabelParent

        edges: set[tuple[int, int]] = set()
        for label in labels:
            child = self._resolve(label)
            for parent in getattr(label, "_parents", ()):
                parent = self._resolve(parent)
                if parent.id is None:
                    raise AnnotationError(
                        f"label {label.name!r}: its parent {parent.name!r} is not saved; save "
                        "it first or in the same call"
                    )
                if parent.id == child.id or child.id in self._ancestors(parent.id):
                    raise AnnotationError(
                        f"label {parent.name!r} cannot be a parent of {label.name!r}: it is "
                        "below it (the hierarchy has no cycles)"
                    )
                edges.add((child.id, parent.id))
        if not edges:
            return
        have = select(ULabelParent.child_id, ULabelParent.parent_id).where(
            ULabelParent.child_id.in_({c for c, _ in edges})
        )
        edges -= {(c, p) for c, p in self.session.execute(have)}
        self.session.add_all(ULabelParent(child_id=c, parent_id=p) for c, p in sorted(edges))
        self.session.flush()

    def _ancestors(self, label_id: int) -> set[int]:
        from lakeline.models import ULabelParent

        found: set[int] = set()
        frontier = {label_id}
        while frontier:
            stmt = select(ULabelParent.parent_id).where(ULabelParent.child_id.in_(frontier))
            frontier = set(self.session.scalars(stmt)) - found
            found |= frontier
        return found

    def features(self, features: Sequence[Feature]) -> None:
        from lakeline.models import Feature

        features = self._merge(features)
        if not features:
            return
        stmt = select(Feature).where(Feature.name.in_({f.name for f in features}))
        known = {row.name: row for row in self.session.scalars(stmt)}
        new: list[Feature] = []
        for feature in features:
            existing = known.get(feature.name)
            if existing is not None:
                if existing.dtype != feature.dtype:
                    raise AnnotationError(
                        f"feature {feature.name!r} exists with dtype {existing.dtype}, not "
                        f"{feature.dtype}: use the existing feature or another name"
                    )
                self.saved[id(feature)] = existing
                continue
            self._check_type(feature)
            self._stamp(feature)
            known[feature.name] = feature
            new.append(feature)
        self.session.add_all(new)
        self.session.flush()
        self.session.expunge_all()

    def _check_type(self, feature: Feature) -> None:
        from lakeline.models import ULabel

        registry = feature.parsed_dtype.registry
        if registry is not None and "." in registry:
            from lakeline.modules.mounting import read_mounted

            module = registry.split(".")[0]
            if module not in read_mounted(self.session.connection()):
                raise AnnotationError(
                    f"feature {feature.name!r}: dtype {feature.dtype} names schema module "
                    f"{module!r}, which this instance does not mount: `lakeline modules add "
                    f"{module}`"
                )
        type_name = feature.parsed_dtype.type_name
        if type_name is None:
            return
        stmt = select(ULabel.id).where(ULabel.name == type_name, ULabel.is_type.is_(True))
        if self.session.scalars(stmt).first() is None:
            raise AnnotationError(
                f"feature {feature.name!r}: dtype {feature.dtype} names the label type "
                f"{type_name!r}, which does not exist: create it with "
                f"ll.ULabel(name={type_name!r}, is_type=True).save()"
            )

    def schemas(self, schemas: Sequence[Schema]) -> None:
        from lakeline.models import Schema, SchemaFeature

        for schema in self._merge(schemas):
            members: list[tuple[str, Feature, bool]] = []
            for slot, item, required in schema._members:
                feature = self._feature(schema.name, item)
                members.append((slot, feature, required))
            schema.hash = _schema_hash(schema, members)
            schema.n_members = len(members)
            stmt = select(Schema).where((Schema.hash == schema.hash) | (Schema.name == schema.name))
            existing = list(self.session.scalars(stmt))
            same = [s for s in existing if s.hash == schema.hash]
            if same:
                self.saved[id(schema)] = same[0]
                continue
            if existing:
                raise AnnotationError(
                    f"schema {schema.name!r} exists with other members or settings: give the "
                    "new schema another name"
                )
            self._stamp(schema)
            self.session.add(schema)
            self.session.flush()
            positions: dict[str, int] = {}
            for slot, feature, required in members:
                position = positions[slot] = positions.get(slot, -1) + 1
                self.session.add(
                    SchemaFeature(
                        schema_id=schema.id,
                        slot=slot,
                        feature_id=feature.id,
                        position=position,
                        required=required,
                    )
                )
            self.session.flush()
        self.session.expunge_all()

    def _feature(self, schema: str, item: Feature | str) -> Feature:
        from lakeline.models import Feature

        if isinstance(item, Feature):
            record: Feature = self._resolve(item)
            if record.id is not None:
                return record
            item = record.name
        found = self.session.scalars(select(Feature).where(Feature.name == item)).first()
        if found is None:
            raise AnnotationError(
                f"schema {schema!r} names feature {item!r}, which does not exist: create it "
                f"with ll.Feature(name={item!r}, dtype=...).save()"
            )
        return found


def _schema_hash(schema: Schema, members: Sequence[tuple[str, Feature, bool]]) -> str:
    """The schema's identity: its members (in order where the order counts) and settings."""
    rows = [[slot, feature.uid, required] for slot, feature, required in members]
    if not schema.ordered_set:
        rows.sort()
    payload = {
        "members": rows,
        "otype": schema.otype,
        "flags": [schema.minimal_set, schema.maximal_set, schema.ordered_set, schema.coerce_dtype],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def insert_records(session: Session, model: type[Any], records: Sequence[Any]) -> None:
    """INSERT new records (with their uid) in bulk (COPY on PostgreSQL, one INSERT ... SELECT
    on SQLite); each gets its id and becomes a detached, saved record."""
    from sqlalchemy.orm import make_transient_to_detached

    from lakeline.db.rows import insert_rows
    from lakeline.models.base import utcnow

    table = model.__table__
    names = [c.name for c in table.columns if c.name != "id"]
    defaults = {  # column defaults the constructor left unset
        name: table.c[name].default.arg
        for name in names
        if table.c[name].default is not None and table.c[name].default.is_scalar
    }
    now = utcnow()
    rows = []
    for record in records:
        loaded = record.__dict__
        if loaded.get("created_at") is None:
            loaded["created_at"] = now
        row = {name: loaded.get(name) for name in names}
        for name, value in defaults.items():
            if row[name] is None:
                row[name] = value
        rows.append(row)
    ids = insert_rows(session, table, rows, unique="uid")
    for record, row, new_id in zip(records, rows, ids, strict=True):
        # every column loaded (nothing lazy on a detached record), written to the instance
        # dict directly: make_transient_to_detached makes it the committed state
        record.__dict__.update(row, id=new_id)
        make_transient_to_detached(record)
