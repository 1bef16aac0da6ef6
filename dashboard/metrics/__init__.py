"""Prometheus metrics of the web (`/metrics`) and of the ingest worker (its own port)."""
