"""Sync jobs: rows, single-flight, progress, abandoned-job recovery."""
