"""The Python entry points of schema modules: they act on the connected instance unless one
is given (`lakeline.modules.add`, `lakeline.modules.mounted`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.instance import Instance


def add(names: str | Sequence[str], instance: Instance | None = None) -> list[str]:
    """Mount schema modules on the instance (default: the connected one), migrating their
    tables; returns the names newly mounted."""
    from lakeline.instance import current
    from lakeline.modules import mounting

    return mounting.add(names, instance or current())


def mounted(instance: Instance | None = None) -> dict[str, str]:
    """{module name: distribution} the instance (default: the connected one) mounts."""
    from lakeline.instance import current

    return dict((instance or current()).modules)
