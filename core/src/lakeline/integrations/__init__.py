"""Links from lakeline artifacts to the tools that view them: `save_vitessce_config(vc,
description=...)` stores a Vitessce view config as a JSON artifact linked to its data."""

from __future__ import annotations

from lakeline.integrations.vitessce import save_vitessce_config

__all__ = ["save_vitessce_config"]
