"""Ingest: the event contract, the worker, and the script that applies a batch."""
