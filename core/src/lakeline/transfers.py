"""Transfer: artifacts of another instance saved into this one, metadata only.

A transferred record keeps its uid (identity survives the move) and points to the bytes where
they are: the source's storage root is registered in the target (nothing is copied; the
record is `in_place`, so the target never deletes those bytes). The run that made it in the
source, that run's parents and their transforms are copied by uid as provenance, and the
record's producer in the target is a *transfer run* whose params name the source instance.
Transferring again changes nothing; a newer version of a stem already here becomes its newest
version. All of it is one transaction in the target; the source is only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, select, update

from lakeline.db.errors import with_retries
from lakeline.db.locks import lock_keys
from lakeline.db.rows import chunks, insert_rows, one_of
from lakeline.db.session import instance_of, stamp
from lakeline.errors import ForeignRecord, LakelineError, StorageError, TransferConflict
from lakeline.models import Artifact, Run, Storage, Transform, User
from lakeline.storage.roots import filesystem, join, strip_protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance

TRANSFORM_KEY = "lakeline/transfer"
_IDENTITY = ("hash", "hash_type", "size", "n_files")  # what makes two records the same content


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_KEYS: dict[type[Any], tuple[str, ...]] = {}


def _keys(model: type[Any]) -> tuple[str, ...]:
    """The model's column names (its mapped attribute names are the same), id first."""
    keys = _KEYS.get(model)
    if keys is None:
        keys = _KEYS[model] = tuple(c.key for c in _table(model).columns)
    return keys


def _columns(model: type[Any], record: Any, **overrides: Any) -> dict[str, Any]:
    """A loaded record's columns (without id) as a row, with `overrides`."""
    loaded = record.__dict__  # loaded records hold every column: no attribute machinery
    row = {k: loaded[k] if k in loaded else getattr(record, k) for k in _keys(model)}
    del row["id"]
    row.update(overrides)
    return row


def transfer(records: Sequence[Artifact], target: Instance) -> list[Artifact]:
    """Save artifacts loaded from other instances into `target` (see the module doc); each
    object becomes the target's record. Records of `target` itself are returned as they are."""
    by_source: dict[str, tuple[Instance, list[Artifact]]] = {}
    for record in records:
        if not isinstance(record, Artifact) or record.id is None:
            raise LakelineError(f"transfer takes saved artifacts, got {record!r}")
        source = instance_of(record)
        if source is None:
            raise ForeignRecord(f"artifact {record.uid} does not say which instance it is from")
        if source.uid != target.uid:
            by_source.setdefault(source.uid, (source, []))[1].append(record)
    for source, group in by_source.values():
        # a deadlock with a save of a key it locks late (one edited meanwhile): again
        with_retries(_Transfer(source, target, group).run)
    return list(records)


class _Transfer:
    def __init__(self, source: Instance, target: Instance, records: list[Artifact]) -> None:
        self.source, self.target = source, target
        self.records = list({r.uid: r for r in records}.values())

    def run(self) -> None:
        storages = {s.id: s for s in self.source.storages()}
        self._check_reachable(storages)
        runs, transforms, handles = self._provenance()
        user_id = self.target.user.id
        with self.target.sessions.write() as session:
            # the keys' locks first, as every writer of a key takes them (db/locks.py): a save
            # of one of these keys here is met committed, not mid-way (`_place_versions`)
            self._lock_keys(session)
            existing = self._existing(session)
            new = [r for r in self.records if r.uid not in existing]
            if new:
                storage_ids = self._storages(session, storages, {r.storage_id for r in new})
                transform_ids = self._copy_versioned(session, Transform, transforms, user_id)
                self._runs(session, runs, transform_ids, user_id)
                creators = sorted(set(handles.values()))
                transfer_run = self._transfer_run(session, runs, user_id, len(new), creators)
                rows = [
                    _columns(
                        Artifact,
                        r,
                        storage_id=storage_ids[r.storage_id],
                        run_id=transfer_run.id,
                        in_place=True,  # the bytes are the source's: never deleted from here
                        created_by_id=user_id,
                    )
                    for r in new
                ]
                self._place_versions(session, Artifact, rows)
                ids = insert_rows(session, _table(Artifact), rows, unique="uid")
                existing.update(
                    {row["uid"]: {**row, "id": i} for row, i in zip(rows, ids, strict=True)}
                )
                new_ids = {r.id: i for r, i in zip(new, ids, strict=True)}
                self._annotations(session, new_ids, transfer_run.id, user_id)
        for record in self.records:
            _become(record, existing[record.uid], self.target)

    # -- before writing ---------------------------------------------------------------------

    def _check_reachable(self, storages: dict[int, Storage]) -> None:
        """One stored object per source storage, looked up with the target's view of it: a
        storage the target cannot read is an error before anything is written."""
        first: dict[int, Artifact] = {}
        for record in self.records:
            if record.available is not False:
                first.setdefault(record.storage_id, record)
        known = {s.root: s for s in self.target.storages()}
        for storage_id, record in first.items():
            root = storages[storage_id].root
            location = join(root, record.store_key)
            try:
                fs = self.target.fs(known[root]) if root in known else filesystem(root)
                found = fs.exists(strip_protocol(location))
            except Exception as exc:  # no filesystem for the scheme, credentials, network
                found, detail = False, f" ({type(exc).__name__}: {exc})"
            else:
                detail = ""
            if not found:
                raise StorageError(
                    f"instance {self.target.name!r} cannot read storage {root} of instance "
                    f"{self.source.name!r}: artifact {record.uid} ({record.key}) is not at "
                    f"{location} from here{detail}. Nothing was transferred (bytes are never "
                    "copied): make the storage reachable from this machine first"
                )

    def _provenance(self) -> tuple[list[Run], list[Transform], dict[int, str]]:
        """The source runs that made the records (with their parents), their transforms
        (with theirs) and the handles of every creator, read from the source."""
        runs: dict[int, Run] = {}
        transforms: dict[int, Transform] = {}
        with self.source.sessions.read() as session:
            wanted = {r.run_id for r in self.records if r.run_id is not None}
            while wanted:
                for chunk in chunks(sorted(wanted)):
                    runs.update(
                        (r.id, r)
                        for r in session.scalars(select(Run).where(one_of(session, Run.id, chunk)))
                    )
                wanted = {r.parent_id for r in runs.values() if r.parent_id} - set(runs)
            wanted = {r.transform_id for r in runs.values()}
            while wanted:
                for chunk in chunks(sorted(wanted)):
                    stmt = select(Transform).where(Transform.id.in_(chunk))
                    transforms.update((t.id, t) for t in session.scalars(stmt))
                wanted = {t.parent_id for t in transforms.values() if t.parent_id} - set(transforms)
            listed: list[Any] = [*self.records, *runs.values(), *transforms.values()]
            creators = {r.created_by_id for r in listed if r.created_by_id is not None}
            handles = dict(
                session.execute(select(User.id, User.handle).where(User.id.in_(creators)))
                .tuples()
                .all()
            )
        return list(runs.values()), list(transforms.values()), handles

    # -- in the target's transaction ---------------------------------------------------------

    def _lock_keys(self, session: Session) -> None:
        """Lock the records' keys with those of the latest versions of their stems here (edited
        here: another key, whose saves make the stem's next version), at once in one sorted
        order; read again under the locks until no key is new (PostgreSQL; SQLite serialises
        writers)."""
        keys = {r.key for r in self.records if r.key is not None}
        if session.get_bind().dialect.name != "postgresql":
            return
        stems = sorted({r.stem for r in self.records})
        locked: set[str] = set()
        while True:
            for chunk in chunks(stems):
                stmt = select(Artifact.key).where(
                    one_of(session, Artifact.stem, chunk),
                    Artifact.is_latest.is_(True),
                    Artifact.key.is_not(None),
                )
                keys.update(session.scalars(stmt))
            if keys <= locked:
                return
            lock_keys(session, "artifact", keys - locked)  # more: edited meanwhile (rare)
            locked |= keys

    def _existing(self, session: Session) -> dict[str, dict[str, Any]]:
        """Rows of the target with the records' uids; the same uid with other content is a
        TransferConflict (two different records are never merged)."""
        found: dict[str, dict[str, Any]] = {}
        uids = [r.uid for r in self.records]
        for chunk in chunks(uids):
            stmt = select(*_table(Artifact).columns).where(one_of(session, Artifact.uid, chunk))
            for row in session.execute(stmt).mappings():
                found[row["uid"]] = dict(row)
        for record in self.records:
            known = found.get(record.uid)
            if known is not None and any(known[f] != getattr(record, f) for f in _IDENTITY):
                raise TransferConflict(
                    f"artifact {record.uid} ({record.key}) of instance {self.source.name!r} "
                    f"has other content than the artifact with that uid in instance "
                    f"{self.target.name!r} (hash {record.hash} vs {known['hash']}): two different "
                    "records are never merged; nothing was transferred"
                )
        return found

    def _storages(
        self, session: Session, storages: dict[int, Storage], used: set[int]
    ) -> dict[int, int]:
        """Source storage id -> target storage id: the same root, registered if new."""
        mapped: dict[int, int] = {}
        for storage_id in sorted(used):
            source = storages[storage_id]
            here = session.scalars(select(Storage).where(Storage.root == source.root)).first()
            if here is None:
                taken = session.scalar(select(func.count()).where(Storage.uid == source.uid))
                here = Storage(
                    **_columns(
                        Storage, source, created_by_id=None, uid=source.uid if not taken else None
                    )
                )
                here._ensure_uid()
                session.add(here)
                session.flush()
            mapped[storage_id] = here.id
        return mapped

    def _copy_versioned(
        self, session: Session, model: type[Any], records: list[Any], user_id: int
    ) -> dict[int, int]:
        """Copy transforms by uid (parents first); an existing uid must be the same code."""
        mapped: dict[int, int] = {}
        pending = sorted(records, key=lambda t: t.uid)
        while pending:
            ready = [t for t in pending if t.parent_id is None or t.parent_id in mapped]
            if not ready:
                raise LakelineError("a cycle among transform parents in the source instance")
            pending = [t for t in pending if t not in ready]
            for record in ready:
                here = session.scalars(select(model).where(model.uid == record.uid)).first()
                if here is not None and here.hash != record.hash:
                    raise TransferConflict(
                        f"transform {record.uid} ({record.key}) differs between instances "
                        f"{self.source.name!r} and {self.target.name!r}: nothing was transferred"
                    )
                if here is None:
                    row = _columns(
                        model,
                        record,
                        parent_id=None if record.parent_id is None else mapped[record.parent_id],
                        created_by_id=user_id,
                    )
                    self._place_versions(session, model, [row])
                    mapped[record.id] = insert_rows(session, _table(model), [row], unique="uid")[0]
                else:
                    mapped[record.id] = here.id
        return mapped

    def _runs(
        self, session: Session, runs: list[Run], transforms: dict[int, int], user_id: int
    ) -> dict[int, int]:
        """Copy the source runs by uid (parents first), without their files' edges."""
        mapped: dict[int, int] = {}
        pending = sorted(runs, key=lambda r: r.id)
        while pending:
            ready = [r for r in pending if r.parent_id is None or r.parent_id in mapped]
            pending = [r for r in pending if r not in ready]
            for record in ready:
                here = session.scalar(select(Run.id).where(Run.uid == record.uid))
                if here is None:
                    taken = record.engine_ref is not None and session.scalar(
                        select(Run.id).where(
                            Run.engine == record.engine, Run.engine_ref == record.engine_ref
                        )
                    )
                    row = _columns(
                        Run,
                        record,
                        transform_id=transforms[record.transform_id],
                        parent_id=None if record.parent_id is None else mapped[record.parent_id],
                        cached_from_id=None,
                        environment_id=None,
                        report_id=None,
                        engine_ref=None if taken else record.engine_ref,
                        created_by_id=user_id,
                    )
                    here = insert_rows(session, _table(Run), [row], unique="uid")[0]
                mapped[record.id] = here
        return mapped

    def _annotations(
        self, session: Session, new_ids: dict[int, int], run_id: int, user_id: int
    ) -> None:
        """The new records' feature values and labels: features mapped by name (the same
        dtype, else TransferConflict), labels by name and type; missing ones are created
        (with the source uid when it is free). The rows name the transfer run."""
        from sqlalchemy import insert

        from lakeline.models import ArtifactULabel, Feature, FeatureValue, ULabel

        def rows_of(model: type[Any]) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for chunk in chunks(sorted(new_ids)):
                where = one_of(source, model.artifact_id, chunk)
                found += map(
                    dict, source.execute(select(*_table(model).columns).where(where)).mappings()
                )
            return found

        with self.source.sessions.read() as source:
            links, values = rows_of(ArtifactULabel), rows_of(FeatureValue)
            if not links and not values:
                return
            wanted = {v["feature_id"] for v in [*values, *links] if v["feature_id"] is not None}
            features = list(source.scalars(select(Feature).where(Feature.id.in_(wanted))))
            labels = {
                u.id: u
                for u in source.scalars(
                    select(ULabel).where(ULabel.id.in_({link["ulabel_id"] for link in links}))
                )
            }
            types = {u.type_id for u in labels.values() if u.type_id is not None} - set(labels)
            labels.update(
                (u.id, u) for u in source.scalars(select(ULabel).where(ULabel.id.in_(types)))
            )
        feature_ids: dict[int, int] = {}
        for feature in features:
            here = session.scalars(select(Feature).where(Feature.name == feature.name)).first()
            if here is not None and here.dtype != feature.dtype:
                raise TransferConflict(
                    f"feature {feature.name!r} is {feature.dtype} in instance "
                    f"{self.source.name!r} but {here.dtype} in {self.target.name!r}: nothing "
                    "was transferred"
                )
            feature_ids[feature.id] = (
                here.id
                if here
                else self._insert(session, Feature, feature, run_id=run_id, created_by_id=user_id)
            )
        label_ids: dict[int, int] = {}
        for label in sorted(labels.values(), key=lambda u: u.type_id is not None):  # types first
            type_id = None if label.type_id is None else label_ids[label.type_id]
            same_type = ULabel.type_id.is_(None) if type_id is None else ULabel.type_id == type_id
            here_id = session.scalar(select(ULabel.id).where(ULabel.name == label.name, same_type))
            label_ids[label.id] = here_id or self._insert(
                session, ULabel, label, type_id=type_id, run_id=run_id, created_by_id=user_id
            )
        stamp_ = {"run_id": run_id, "created_by_id": user_id}
        for link in links:
            link.pop("id")
            feature = link["feature_id"]
            link.update(
                stamp_,
                artifact_id=new_ids[link["artifact_id"]],
                ulabel_id=label_ids[link["ulabel_id"]],
                feature_id=None if feature is None else feature_ids[feature],
            )
        for value in values:
            value.pop("id")
            value.update(
                stamp_,
                artifact_id=new_ids[value["artifact_id"]],
                feature_id=feature_ids[value["feature_id"]],
            )
        for model, made in ((ArtifactULabel, links), (FeatureValue, values)):
            for chunk in chunks(made):
                session.execute(insert(model), list(chunk))

    def _insert(self, session: Session, model: type[Any], record: Any, **overrides: Any) -> int:
        """Copy one record (a feature, a label) into the target, keeping its uid when free."""
        row = _columns(model, record, **overrides)
        if session.scalar(select(model.id).where(model.uid == row["uid"])) is not None:
            from lakeline.ids import new_uid

            row["uid"] = new_uid(model.uid_length)
        return insert_rows(session, _table(model), [row], unique="uid")[0]

    def _transfer_run(
        self, session: Session, runs: list[Run], user_id: int, count: int, creators: list[str]
    ) -> Run:
        from lakeline.lineage.records import ensure_transform, log_status, new_run

        transform = ensure_transform(
            session,
            key=TRANSFORM_KEY,
            kind="function",
            description="artifacts transferred from another instance (bytes not copied)",
            created_by_id=user_id,
        )
        made = sorted({r.uid for r in runs if any(a.run_id == r.id for a in self.records)})
        params = {
            "source_instance": self.source.name,
            "source_instance_uid": self.source.uid,
            "artifacts": count,
            "source_runs": made,
            "source_creators": creators,
        }
        run = new_run(transform, status="started", params=params, created_by_id=user_id)
        log_status(run, "completed")
        session.add(run)
        session.flush()
        return run

    def _place_versions(
        self, session: Session, model: type[Any], rows: list[dict[str, Any]]
    ) -> None:
        """Set `is_latest` of new rows among the versions of their stems in the target: the
        highest uid of a stem is its latest (the one here loses it when a newer one comes)."""
        stems = sorted({row["stem"] for row in rows})
        newest: dict[str, str] = {}
        for chunk in chunks(stems):
            stmt = (
                select(model.stem, func.max(model.uid))
                .where(one_of(session, model.stem, chunk))
                .group_by(model.stem)
            )
            newest.update(session.execute(stmt).tuples().all())
        here = dict(newest)
        for row in rows:
            newest[row["stem"]] = max(newest.get(row["stem"], ""), row["uid"])
        for row in rows:
            row["is_latest"] = row["uid"] == newest[row["stem"]]
        replaced = [s for s in stems if s in here and here[s] != newest[s]]
        for chunk in chunks(replaced):
            session.execute(
                update(model)
                .where(one_of(session, model.stem, chunk), model.is_latest.is_(True))
                .values(is_latest=False)
            )
        if model is Artifact:
            self._check_keys(session, [r for r in rows if r["is_latest"] and r["key"]])

    def _check_keys(self, session: Session, rows: list[dict[str, Any]]) -> None:
        """A key held by the latest version of another stem in the target is a conflict."""
        for chunk in chunks(rows):
            keys = {row["key"]: row for row in chunk}
            stmt = select(Artifact.key, Artifact.stem, Artifact.uid).where(
                one_of(session, Artifact.key, list(keys)), Artifact.is_latest.is_(True)
            )
            for key, stem, uid in session.execute(stmt):
                if stem != keys[key]["stem"]:
                    raise TransferConflict(
                        f"key {key!r} of artifact {keys[key]['uid']} (instance "
                        f"{self.source.name!r}) is the key of artifact {uid} in instance "
                        f"{self.target.name!r}, another artifact: nothing was transferred"
                    )


def _become(record: Artifact, row: dict[str, Any], target: Instance) -> None:
    """Make the loaded object the target's record (its columns, its instance)."""
    from sqlalchemy.orm.attributes import set_committed_value

    loaded = record.__dict__
    for key in _keys(Artifact):  # only what differs (id, storage, run, ...)
        if key not in loaded or loaded[key] != row[key]:
            set_committed_value(record, key, row[key])
    stamp(record, target)
