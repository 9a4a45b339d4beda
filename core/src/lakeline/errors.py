"""Errors raised by lakeline: each names the problem and, where it can, what to do."""

from __future__ import annotations

from typing import Any


class LakelineError(Exception):
    """Base class of every error lakeline raises on purpose."""


class InstanceNotFound(LakelineError):
    """No instance of that name is configured on this machine."""


class NotConnected(LakelineError):
    """No instance is connected."""


class DatabaseError(LakelineError):
    """The database failed or refused an operation (see the subclasses)."""


class DatabaseUnreachable(DatabaseError):
    """The instance's database cannot be reached (or went away)."""


class DatabaseLocked(DatabaseError):
    """Another writer held SQLite's write lock for longer than the busy timeout."""


class DatabaseCorrupted(DatabaseError):
    """The SQLite database file is not a database or is damaged."""


class UnexpectedSchema(DatabaseError):
    """A migration found a table not as lakeline made it (changed by hand or by another tool):
    the message names the table and what was expected; nothing was migrated."""


class DatabasePermissionDenied(DatabaseError):
    """The database role (or file permissions) do not allow the operation."""


class ReadOnlyInstance(LakelineError):
    """A write through an instance opened read-only (`using()`, `ll.Instance(name)`)."""


class ForeignRecord(LakelineError, ValueError):
    """A record of one instance used where a record of another is needed."""


class TransferConflict(LakelineError):
    """A transfer would merge two different records (same uid, other content) or take a key
    another artifact holds."""


class PermissionDenied(DatabasePermissionDenied):
    """The connected PostgreSQL role may not do this: the message names the action and the
    lakeline role (read, write, admin) or space membership it needs."""


class SchemaOutOfDate(LakelineError):
    """The database schema and this version of lakeline disagree."""


class StorageError(LakelineError):
    """The storage cannot be read or written (path, permissions, credentials)."""


class NotEnoughSpace(LakelineError):
    """A file lakeline was about to write does not fit on its file system or quota (a check
    before a migration's backup, or a full disk met while storing bytes): nothing was
    written."""


class InvalidKey(LakelineError, ValueError):
    """An artifact key is malformed (absolute, contains '..', empty, ...)."""


class InvalidValue(LakelineError, ValueError):
    """A value cannot be stored: a NUL byte, longer than its column allows, out of range."""


class ReadOnlyField(LakelineError, ValueError):
    """A saved record's identity (uid, hash, storage, version bookkeeping) cannot be edited."""


class EditConflict(LakelineError):
    """A saved record's field was edited on a copy loaded before another save changed it."""


class PathNotFound(LakelineError, FileNotFoundError):
    """A path given to lakeline does not exist or cannot be read."""


class UnsupportedPath(LakelineError, ValueError):
    """A path is not a regular file or folder (FIFO, device, socket) or is a symlink loop."""


class UnsupportedObject(LakelineError, TypeError):
    """No format plugin knows how to save, load or open this object or suffix."""


class QueryError(LakelineError, ValueError):
    """A query names an unknown field, relation or operator, or a wrong value."""


class DoesNotExist(LakelineError, LookupError):
    """A `get()` matched no record."""


class MultipleFound(LakelineError, LookupError):
    """A `get()` matched more than one record."""


class IntegrityProblem(LakelineError):
    """Stored bytes do not match the recorded hash, or a record lacks its bytes."""


class InvalidReference(LakelineError, ValueError):
    """A reference's location, hash or size is malformed (empty location, hash without type)."""


class MissingReference(LakelineError, ValueError):
    """A record names another that does not exist: a producing run never saved or deleted, a
    storage deleted since this process read it. Nothing was written."""


class StepsNotRecorded(LakelineError):
    """A BatchRecorder's flush left out steps the database refused (a run, parent run,
    transform or user they name deleted since, a run hidden by space rules), with what only
    they named, and wrote the rest of its batch. `steps`: each one's engine id -> why."""

    def __init__(self, message: str, steps: dict[str, str] | None = None) -> None:
        super().__init__(message)  # (`steps` optional: unpickled from args, then __dict__)
        self.steps = steps or {}


class ArtifactUnavailable(LakelineError):
    """The artifact is a reference: lakeline knows of the data but holds no bytes for it."""


class SourceChanged(IntegrityProblem):
    """A file changed while lakeline read it: what was stored would not match one state of it."""


class MissingDependency(LakelineError, ImportError):
    """A format needs a library that is not installed; the message names the extra."""


class UnreadableArtifact(LakelineError):
    """The artifact's bytes are not what its format expects (wrong format, corrupt file)."""


class IncompatibleMembers(LakelineError, ValueError):
    """A collection's members cannot be combined as asked (mixed types, disjoint variables,
    duplicate observation names, a missing obs column)."""


class InvalidDtype(LakelineError, ValueError):
    """A feature's dtype is not one lakeline knows (str, int, float, num, bool, date, datetime,
    dict, cat, cat[Registry], cat[Registry[Type]], list[...])."""


class AnnotationError(LakelineError, ValueError):
    """A feature value, label or schema member does not fit: a value of the wrong dtype, a
    label of the wrong type, a feature or label that does not exist."""


class SynonymError(LakelineError, ValueError):
    """A synonym is refused (another record's name or synonym, empty, contains "|") or unknown."""


class ModuleError(LakelineError):
    """A schema module cannot be used as asked (see the subclasses)."""


class UnknownModule(ModuleError, LookupError):
    """No installed distribution registers a schema module of that name."""


class ModuleNotInstalled(ModuleError):
    """The instance mounts a schema module whose distribution is not installed here."""


class ModuleNotMounted(ModuleError):
    """A registry of a schema module the connected instance does not mount was used."""


class ModuleConflict(ModuleError):
    """Two schema modules claim one name or table prefix, or a module's tables leave its
    prefix (or take a core table's name)."""


class ModuleMigrationFailed(ModuleError):
    """A schema module's migration failed; the database is as it was before."""


class SimilarNameWarning(UserWarning):
    """A new record's name is close to an existing record's (case, punctuation or a typo)."""


class CurationError(LakelineError, ValueError):
    """Data does not fit its schema (a curator's `validate()`): `problems` lists every one,
    each naming where, what and the fix; `table` renders them."""

    def __init__(self, message: str, problems: list[Any] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
