"""Lineage exporters shipped with lakeline: W3C PROV-JSON, RO-Crate and OpenLineage.

`lakeline.exporters.plugin` registers them (and the OpenLineage emitter) as a default plugin;
each module keeps its top-level imports light so loading plugins stays cheap.
"""
