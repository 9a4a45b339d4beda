"""Find the artifact a command names: a uid (16 chars), a stem (12 chars: latest) or a key."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.models import Artifact

_UID = re.compile(r"^[0-9A-Za-z]{12}(?:[0-9A-Za-z]{4})?$")


def _pick_version(versions: list[Artifact], version: str, ref: str) -> Artifact:
    """The version whose label is `version`, else the one whose number (1, 2, ...) it is."""
    from lakeline.cli.output import version_number
    from lakeline.errors import DoesNotExist

    for artifact in versions:
        if artifact.version == version:
            return artifact
    if version.isdigit():
        for artifact in versions:
            if version_number(artifact) == int(version):
                return artifact
    known = ", ".join(
        f"{version_number(a)}" + (f" ({a.version})" if a.version else "") for a in versions
    )
    raise DoesNotExist(f"artifact {ref!r} has no version {version!r}; its versions: {known}")


def _versions_of(stem: str) -> list[Artifact]:
    from lakeline.models import Artifact

    return Artifact.filter(stem=stem, is_latest=None).order_by("uid").all()


def resolve_artifact(ref: str, version: str | None = None) -> Artifact:
    """The artifact `ref` names; with `version`, that version of it.

    `ref` is tried as a uid first when it looks like one (a 12-char stem means the latest
    version), then as a key (the latest version under that key).
    """
    from lakeline.errors import DoesNotExist
    from lakeline.models import Artifact
    from lakeline.storage.keys import validate_key

    found: Artifact | None = None
    if _UID.match(ref):
        if len(ref) == 16:
            found = Artifact.filter(uid=ref).first()
        else:
            found = Artifact.filter(stem=ref, is_latest=True).first()
    if found is None:
        key = validate_key(ref)  # InvalidKey names what is wrong with it
        found = Artifact.filter(key=key).first()
        if found is None:  # e.g. the key's latest version now has another key
            found = Artifact.filter(key=key, is_latest=None).order_by("-uid").first()
    if found is None:
        what = "uid or key" if _UID.match(ref) else "key"
        raise DoesNotExist(
            f"no artifact with {what} {ref!r}: list artifacts with `lakeline ls` "
            "or find them with `lakeline search`"
        )
    if version is None:
        return found
    return _pick_version(_versions_of(found.stem), version, ref)
