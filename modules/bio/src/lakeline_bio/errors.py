"""lakeline-bio's errors: each a `LakelineError`, with a one-line message naming the problem."""

from __future__ import annotations

from lakeline.errors import DoesNotExist, InvalidValue, LakelineError


class UnknownSource(LakelineError, LookupError):
    """No public source (registry, ontology, version, organism) of that name here."""


class UnknownTerm(DoesNotExist):
    """An ontology id (or Ensembl id) the source does not hold."""


class DeprecatedTerm(InvalidValue):
    """A term the source's release marks as deprecated (obsolete); the message names its
    replacement when the release gives one."""


class AmbiguousOrganism(InvalidValue):
    """A gene looked up without an organism matches genes of several organisms."""
