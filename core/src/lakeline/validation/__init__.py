"""Validation for registries with a name-like field (DESIGN §10).

`CanValidate` (a mixin) gives a registry `validate`, `inspect`, `standardize`, `from_values`
and synonyms on its records; `check_new_names` is the duplicate safeguard a registry's save
path calls on a batch of new records. Importing this package loads neither SQLAlchemy nor
pandas nor rapidfuzz: the methods import them when called.
"""

from __future__ import annotations

from lakeline.validation.mixin import CanValidate
from lakeline.validation.similar import check_new_names, similar_names, warn_similar

__all__ = ["CanValidate", "check_new_names", "similar_names", "warn_similar"]
