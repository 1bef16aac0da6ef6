"""Validation of stream entries against the event contract (docs/events.md).

`parse_entry` turns one raw stream entry into an `Event` or a `Rejection`
with a machine code and a sentence. It never raises on bad input: anything a
producer can send ends as one of the two.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from dashboard.pipeline.coords import to_wgs84

MAX_FIELD_BYTES = 4096
MAX_ENTRY_BYTES = 16384
MAX_TITLE_CHARS = 200
MIN_TS_MS = 946684800000  # 2000-01-01T00:00:00Z: older timestamps are producer bugs

KINDS = ("incident", "traffic", "risk")
STATUSES = ("reported", "dispatched", "in_progress", "resolved", "verified", "closed", "reopened")
SOURCES = ("hotline", "grid", "video_ai", "sensor", "other")
DATUMS = ("wgs84", "gcj02", "bd09")

_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH_MS = re.compile(r"-?\d{1,16}")
_ISO_WITH_OFFSET = re.compile(r".*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)")


@dataclass(slots=True)
class Event:
    """A valid event, coordinates in WGS-84, time in epoch milliseconds."""

    event_id: str
    kind: str
    ts: int
    lon: float | None
    lat: float | None
    area_id: str | None
    data: dict[str, str]  # the kind's own fields, validated, as strings
    datum: str = "wgs84"  # of lon/lat: wgs84 unless parsed with convert=False


@dataclass(slots=True)
class Rejection:
    """Why an entry was dead-lettered: a machine code and a sentence."""

    reason: str
    detail: str


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _require(fields: dict[str, str], name: str, why: str = "") -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise _Invalid("missing_field", f"field {name!r} is required{why}")
    return value


def _identifier(fields: dict[str, str], name: str, required: bool = True) -> str | None:
    value = _require(fields, name) if required else fields.get(name)
    if value is None:
        return None
    if not _ID.fullmatch(value):
        raise _Invalid("bad_value", f"{name} must be 1-64 characters of A-Za-z0-9._:-")
    return value


def _number(fields: dict[str, str], name: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if not _NUMBER.fullmatch(value):
        raise _Invalid("bad_value", f"{name} is not a finite decimal number: {value[:40]!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _Invalid("bad_value", f"{name} is out of range: {value[:40]!r}")
    return number


def parse_ts(value: str) -> int:
    """Epoch milliseconds of an ISO-8601 time with offset or integer epoch ms."""
    if _EPOCH_MS.fullmatch(value):
        return int(value)
    if "T" not in value[:11] or not _ISO_WITH_OFFSET.fullmatch(value):
        raise _Invalid("bad_value", f"ts must be ISO-8601 with a UTC offset or epoch ms: "
                       f"{value[:40]!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Invalid("bad_value", f"ts is not a valid ISO-8601 time: {value[:40]!r}") from exc
    if moment.utcoffset() is None:
        raise _Invalid("bad_value", "ts has no UTC offset")
    return int(moment.timestamp() * 1000)


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    total = 0
    fields: dict[str, str] = {}
    for key, value in raw.items():
        size = len(key) + len(value)
        total += size
        if size > MAX_FIELD_BYTES:
            name = key[:40].decode("utf-8", "replace")
            raise _Invalid("too_large", f"field {name!r} is {size} bytes, over 4 KiB")
        try:
            fields[key.decode()] = value.decode()
        except UnicodeDecodeError as exc:
            name = key[:40].decode("utf-8", "replace")
            raise _Invalid("bad_encoding", f"field {name!r} is not valid UTF-8") from exc
    if total > MAX_ENTRY_BYTES:
        raise _Invalid("too_large", f"entry is {total} bytes, over 16 KiB")
    return fields


def _where(
    fields: dict[str, str], required: bool
) -> tuple[float | None, float | None, str | None, str]:
    lon = _number(fields, "lon")
    lat = _number(fields, "lat")
    if (lon is None) != (lat is None):
        raise _Invalid("missing_field", "lon and lat must come together")
    area_id = fields.get("area_id") or None
    if area_id is not None and not _ID.fullmatch(area_id):
        raise _Invalid("bad_value", "area_id must be 1-64 characters of A-Za-z0-9._:-")
    if lon is None or lat is None:
        if required:
            raise _Invalid("missing_field", "lon and lat are required")
        return None, None, area_id, "wgs84"
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise _Invalid("bad_value", f"lon/lat out of range: {lon}, {lat}")
    datum = fields.get("coord", "wgs84") or "wgs84"
    if datum not in DATUMS:
        raise _Invalid("bad_value", f"coord must be one of {', '.join(DATUMS)}")
    return lon, lat, area_id, datum


def _incident(fields: dict[str, str]) -> tuple[dict[str, str], bool]:
    _identifier(fields, "incident_id")
    status = _require(fields, "status")
    if status not in STATUSES:
        raise _Invalid("unknown_status", f"status {status[:40]!r} is not one of the contract's")
    data = {"incident_id": fields["incident_id"], "status": status}
    category = fields.get("category") or None
    if category is None and status == "reported":
        raise _Invalid("missing_field", "field 'category' is required on status reported")
    if category is not None:
        data["category"] = _identifier(fields, "category") or ""
    source = fields.get("source") or None
    if source is not None:
        if source not in SOURCES:
            raise _Invalid("bad_value", f"source must be one of {', '.join(SOURCES)}")
        data["source"] = source
    severity = fields.get("severity") or None
    if severity is not None:
        if severity not in ("1", "2", "3", "4"):
            raise _Invalid("bad_value", "severity must be 1, 2, 3 or 4")
        data["severity"] = severity
    title = fields.get("title")
    if title:
        if len(title) > MAX_TITLE_CHARS:
            raise _Invalid("bad_value", f"title is {len(title)} characters, over 200")
        data["title"] = title
    department = fields.get("department")
    if department:
        data["department"] = department
    sla = _number(fields, "sla_minutes")
    if sla is not None:
        if sla <= 0:
            raise _Invalid("bad_value", "sla_minutes must be positive")
        data["sla_minutes"] = repr(sla)
    return data, status == "reported"


def _traffic(fields: dict[str, str]) -> tuple[dict[str, str], bool]:
    _identifier(fields, "segment_id")
    _require(fields, "speed_kmh")
    speed = _number(fields, "speed_kmh")
    assert speed is not None
    if not 0 <= speed < 200:
        raise _Invalid("bad_value", "speed_kmh must be at least 0 and below 200")
    data = {"segment_id": fields["segment_id"], "speed_kmh": repr(speed)}
    free_flow = _number(fields, "free_flow_kmh")
    if free_flow is not None:
        if not 0 < free_flow < 200:
            raise _Invalid("bad_value", "free_flow_kmh must be above 0 and below 200")
        data["free_flow_kmh"] = repr(free_flow)
    return data, True


def _risk(fields: dict[str, str]) -> tuple[dict[str, str], bool]:
    _identifier(fields, "indicator")
    _require(fields, "value")
    value = _number(fields, "value")
    assert value is not None
    return {"indicator": fields["indicator"], "value": repr(value)}, False


_KINDS = {"incident": _incident, "traffic": _traffic, "risk": _risk}


def parse_entry(
    raw: dict[bytes, bytes], now_ms: int, max_future_ms: int, convert: bool = True
) -> Event | Rejection:
    """Validate one stream entry; never raises on bad input.

    With `convert`, GCJ-02/BD-09 points come back in WGS-84; without it they
    keep their datum (`Event.datum`) for a vectorised conversion of the batch.
    """
    try:
        fields = _decode(raw)
        event_id = _identifier(fields, "event_id")
        kind = _require(fields, "kind")
        version = fields.get("v", "1")
        if version != "1":
            raise _Invalid("bad_value", f"contract version {version[:10]!r} is not supported")
        parse_kind = _KINDS.get(kind)
        if parse_kind is None:
            raise _Invalid("unknown_kind", f"kind {kind[:40]!r} is not one of {', '.join(KINDS)}")
        ts = parse_ts(_require(fields, "ts"))
        if ts < MIN_TS_MS:
            raise _Invalid("bad_value", "ts is before the year 2000")
        if ts > now_ms + max_future_ms:
            raise _Invalid("bad_value", "ts is too far in the future")
        data, location_required = parse_kind(fields)
        lon, lat, area_id, datum = _where(fields, location_required)
        if lon is None and area_id is None and kind == "risk":
            raise _Invalid("missing_field", "risk needs area_id or lon/lat")
        assert event_id is not None
        if convert and datum != "wgs84" and lon is not None and lat is not None:
            lon, lat = to_wgs84(lon, lat, datum)
            datum = "wgs84"
        return Event(event_id, kind, ts, lon, lat, area_id, data, datum)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail)


# ---- the command stream: what officials do from the cockpit -----------------

ACTIONS = {"acknowledge": "in_progress", "dispatch": "dispatched", "close": "closed",
           "note": ""}
MAX_NOTE_CHARS = 500


def parse_command(raw: dict[bytes, bytes], now_ms: int, max_future_ms: int) -> Event | Rejection:
    """Validate one command-stream entry (docs/commands.md) into an incident update."""
    try:
        fields = _decode(raw)
        command_id = _identifier(fields, "command_id")
        action = _require(fields, "action")
        if action not in ACTIONS:
            raise _Invalid("bad_value", f"action must be one of {', '.join(ACTIONS)}")
        incident_id = _identifier(fields, "incident_id")
        user = _identifier(fields, "user")
        ts = parse_ts(_require(fields, "ts"))
        if not MIN_TS_MS <= ts <= now_ms + max_future_ms:
            raise _Invalid("bad_value", "ts is out of range")
        department = fields.get("department", "")
        if action == "dispatch" and not department:
            raise _Invalid("missing_field", "field 'department' is required to dispatch")
        note = fields.get("note", "") or fields.get("result", "")
        if len(note) > MAX_NOTE_CHARS or len(department) > MAX_TITLE_CHARS:
            raise _Invalid("bad_value", "note or department is too long")
        assert command_id is not None and incident_id is not None and user is not None
        data = {"incident_id": incident_id, "status": ACTIONS[action], "action": action,
                "user": user, "note": note}
        if department:
            data["department"] = department
        return Event(command_id, "command", ts, None, None, None, data)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail)
