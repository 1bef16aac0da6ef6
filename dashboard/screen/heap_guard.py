"""The heap guard: a page whose JS heap passes `CITYBRAIN_HEAP_CEILING_MB` reloads itself.

`heap_guard.js` is inlined into the page (`index.py`); before it reloads it sends a
beacon to `BEACON_URL`, which this blueprint writes to the log (who, which page, how
much heap), so that an operator sees why a wall reloaded.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import flask

from dashboard.auth.guard import current_user

log = logging.getLogger(__name__)

GUARD_JS = Path(__file__).with_name("heap_guard.js")
BEACON_URL = "/beacon/heap-guard"
CHECK_MS = 10_000  # how often the page looks at its heap
MAX_BODY = 2048

heap_guard = flask.Blueprint("heap_guard", __name__)


def script(ceiling_mb: float, check_ms: int = CHECK_MS) -> str:
    """The guard's inline script for this ceiling (0: it only reports, never reloads)."""
    return (GUARD_JS.read_text(encoding="utf-8")
            .replace("@CEILING_MB@", json.dumps(ceiling_mb))
            .replace("@CHECK_MS@", str(int(check_ms)))
            .replace("@BEACON@", json.dumps(BEACON_URL)))


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@heap_guard.post(BEACON_URL)
def beacon() -> tuple[str, int]:
    """Log that a page passed its heap ceiling and is reloading (answers 204)."""
    if (flask.request.content_length or 0) > MAX_BODY:
        return "", 413
    try:
        report = json.loads(flask.request.get_data(cache=False)[:MAX_BODY] or b"{}")
    except ValueError:
        report = {}
    if not isinstance(report, dict):
        report = {}
    user = current_user()
    log.warning("heap guard: a page of %s (%s) reloads itself: JS heap %s MB over the "
                "ceiling of %s MB; page %r", user.name, user.role, _number(report.get("heap_mb")),
                _number(report.get("ceiling_mb")), str(report.get("url", ""))[:200])
    return "", 204
