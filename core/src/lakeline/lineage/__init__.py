"""Lineage: tracked runs of scripts, notebooks and functions; the Recorder engines call;
graph queries, rendering and exports."""
