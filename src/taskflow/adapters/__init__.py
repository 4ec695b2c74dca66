"""Adapters for the ports: the in-memory ones ship as the embedded default."""
