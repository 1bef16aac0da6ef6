"""Configuration for gunicorn (`gunicorn -c python:dashboard.gunicorn_conf`): metrics, logs.

Loaded by the master before any worker imports the app, so that every worker finds
`PROMETHEUS_MULTIPROC_DIR` set when it imports `prometheus_client`, and `/metrics`
adds up the counters of every worker. The folder is emptied at start and a dead
worker's gauges are dropped. No access log: the app writes one line per request
itself, with the route template and without the query string (wall tokens travel in it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dashboard.logs import configure as configure_logs
from dashboard.logs import gunicorn_config
from dashboard.settings import Settings

_settings = Settings.load()
_created = not _settings.metrics_dir
metrics_dir = Path(_settings.metrics_dir or tempfile.mkdtemp(prefix="citybrain-metrics-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
accesslog = None
logconfig_dict = gunicorn_config(_settings.log_format)


def on_starting(server: Any) -> None:
    """Empty the metrics folder (counts of an earlier run must not add up) and set up logs."""
    configure_logs(_settings.log_format)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the live gauges of a worker that exited (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(metrics_dir))


def on_exit(server: Any) -> None:
    """Remove the metrics folder this start made for itself."""
    if _created:
        shutil.rmtree(metrics_dir, ignore_errors=True)
