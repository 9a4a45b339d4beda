"""Artifact formats: a registry fed by the `register_formats` hook, and the default plugins."""
