"""Validation of stream entries against the event contract (docs/events.md).

`parse_entry` turns one raw stream entry into an `Event` or a `Rejection`
with a machine code and a sentence. It never raises on bad input: anything a
producer can send ends as one of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from math import isfinite as _isfinite

from dashboard.kinds import BY_NAME, KINDS
from dashboard.kinds.base import ID as _ID
from dashboard.kinds.base import Event, Invalid
from dashboard.kinds.base import identifier as _identifier
from dashboard.kinds.base import number as _number
from dashboard.kinds.base import require as _require
from dashboard.kinds.incident import MAX_TITLE_CHARS, SOURCES, STATUSES
from dashboard.pipeline.coords import to_wgs84

MAX_FIELD_BYTES = 4096
MAX_ENTRY_BYTES = 16384
MIN_TS_MS = 946684800000  # 2000-01-01T00:00:00Z: older timestamps are producer bugs

DATUMS = ("wgs84", "gcj02", "bd09")

_EPOCH_MS = re.compile(r"-?\d{1,16}")
_ISO_WITH_OFFSET = re.compile(r".*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)")
_Invalid = Invalid

__all__ = ["KINDS", "MAX_TITLE_CHARS", "SATISFACTION", "SOURCES", "STATUSES", "Event",
           "Rejection", "command_status", "parse_command", "parse_entry", "parse_ts"]


@dataclass(slots=True)
class Rejection:
    """Why an entry was dead-lettered: a machine code and a sentence."""

    reason: str
    detail: str


def parse_ts(value: str) -> int:
    """Epoch milliseconds of an ISO-8601 time with offset or integer epoch ms."""
    if len(value) <= 16 and value.isascii() and value.isdigit():  # the common form, unsigned
        return int(value)
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


_ID_OK = _ID.fullmatch
_NUMBER_CHARS = "0123456789.+-eE"


@lru_cache(maxsize=4096)
def _iso_ms(value: str) -> int:
    """`parse_ts` of an ISO-8601 time (a batch's events often share their second)."""
    return parse_ts(value)


def _fast_number(value: str | None) -> float | None:
    """A finite decimal number as `number` reads it; None for anything else (or nothing).

    Only ASCII digits, signs, points and exponents pass, and of those `float` accepts
    just what `NUMBER` matches (no underscores, spaces, inf or nan).
    """
    if not value or value.strip(_NUMBER_CHARS):
        return None
    try:
        result = float(value)
    except ValueError:
        return None
    return result if _isfinite(result) else None


def _parse_valid(raw: dict[bytes, bytes], now_ms: int, max_future_ms: int) -> Event | None:
    """The common valid entry in one pass, the same `Event` as `_parse_checked` makes.

    None for anything out of the ordinary (an entry near a size limit, a bad field,
    an optional field in an unusual form): `_parse_checked` decides it, with its reason.
    """
    if len(b"".join(raw)) + len(b"".join(raw.values())) > MAX_FIELD_BYTES:
        return None  # (smaller: no field can be over 4 KiB, the entry not over 16 KiB)
    try:
        fields = {key.decode(): value.decode() for key, value in raw.items()}
    except UnicodeDecodeError:
        return None
    event_id = fields.get("event_id")
    kind = fields.get("kind")
    stamp = fields.get("ts")
    if (not event_id or not _ID_OK(event_id) or kind not in BY_NAME or not stamp
            or fields.get("v", "1") != "1"):
        return None
    if len(stamp) <= 16 and stamp.isascii() and stamp.isdigit():
        ts = int(stamp)
    else:
        try:
            ts = _iso_ms(stamp)
        except _Invalid:
            return None
    if ts < MIN_TS_MS or ts > now_ms + max_future_ms:
        return None
    spec = BY_NAME[kind]
    try:
        data, location_required = spec.parse(fields)
    except _Invalid:
        return None
    area_id = fields.get("area_id") or None
    if area_id is not None and not _ID_OK(area_id):
        return None
    lon_text, lat_text = fields.get("lon"), fields.get("lat")
    if lon_text is None and lat_text is None:
        if location_required or (area_id is None and spec.needs_place):
            return None
        return Event(event_id, kind, ts, None, None, area_id, data)
    lon, lat = _fast_number(lon_text), _fast_number(lat_text)
    if lon is None or lat is None or not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return None
    datum = fields.get("coord") or "wgs84"
    if datum not in DATUMS:
        return None
    return Event(event_id, kind, ts, lon, lat, area_id, data, datum)


def parse_entry(
    raw: dict[bytes, bytes], now_ms: int, max_future_ms: int, convert: bool = True
) -> Event | Rejection:
    """Validate one stream entry; never raises on bad input.

    With `convert`, GCJ-02/BD-09 points come back in WGS-84; without it they
    keep their datum (`Event.datum`) for a vectorised conversion of the batch.
    A valid entry of the common shape takes a fast path (`_parse_valid`); every
    other entry the field-by-field checks, which give the reason of a rejection.
    """
    event = _parse_valid(raw, now_ms, max_future_ms)
    if event is None:
        return _parse_checked(raw, now_ms, max_future_ms, convert)
    if convert and event.datum != "wgs84" and event.lon is not None and event.lat is not None:
        event.lon, event.lat = to_wgs84(event.lon, event.lat, event.datum)
        event.datum = "wgs84"
    return event


def _parse_checked(
    raw: dict[bytes, bytes], now_ms: int, max_future_ms: int, convert: bool
) -> Event | Rejection:
    """`parse_entry` field by field: an `Event`, or the `Rejection` of the first bad field."""
    try:
        fields = _decode(raw)
        event_id = _identifier(fields, "event_id")
        kind = _require(fields, "kind")
        version = fields.get("v", "1")
        if version != "1":
            raise _Invalid("bad_value", f"contract version {version[:10]!r} is not supported")
        spec = BY_NAME.get(kind)
        if spec is None:
            raise _Invalid("unknown_kind", f"kind {kind[:40]!r} is not one of "
                           f"{', '.join(k.name for k in KINDS)}")
        ts = parse_ts(_require(fields, "ts"))
        if ts < MIN_TS_MS:
            raise _Invalid("bad_value", "ts is before the year 2000")
        if ts > now_ms + max_future_ms:
            raise _Invalid("bad_value", "ts is too far in the future")
        data, location_required = spec.parse(fields)
        lon, lat, area_id, datum = _where(fields, location_required)
        if lon is None and area_id is None and spec.needs_place:
            raise _Invalid("missing_field", f"{kind} needs area_id or lon/lat")
        assert event_id is not None
        if convert and datum != "wgs84" and lon is not None and lat is not None:
            lon, lat = to_wgs84(lon, lat, datum)
            datum = "wgs84"
        return Event(event_id, kind, ts, lon, lat, area_id, data, datum)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail)


# ---- the command stream: what officials do from the cockpit -----------------

ACTIONS = {"acknowledge": "in_progress", "dispatch": "dispatched", "close": "closed",
           "note": "", "verify": "closed", "reject": "reopened", "follow_up": "", "split": ""}
SATISFACTION = ("satisfied", "basically_satisfied", "dissatisfied")
MAX_NOTE_CHARS = 500


def command_status(action: str, verify: bool = True, followup_reopens: bool = True,
                   satisfaction: str = "") -> str:
    """The status an action sets ('' for none).

    `close` only resolves while verification is on (`CITYBRAIN_VERIFY`), and a
    dissatisfied follow-up reopens when `CITYBRAIN_FOLLOWUP_REOPENS` says so.
    """
    if action == "close" and verify:
        return "resolved"
    if action == "follow_up":
        return "reopened" if satisfaction == "dissatisfied" and followup_reopens else ""
    return ACTIONS[action]


def parse_command(raw: dict[bytes, bytes], now_ms: int, max_future_ms: int,
                  verify: bool = True, followup_reopens: bool = True) -> Event | Rejection:
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
        reason = _require(fields, "reason", " to reject") if action == "reject" else ""
        report = _identifier(fields, "report") if action == "split" else None
        satisfaction = ""
        if action == "follow_up":
            satisfaction = _require(fields, "satisfaction", " on follow_up")
            if satisfaction not in SATISFACTION:
                raise _Invalid("bad_value",
                               f"satisfaction must be one of {', '.join(SATISFACTION)}")
        note = reason or fields.get("note", "") or fields.get("result", "")
        if len(note) > MAX_NOTE_CHARS or len(department) > MAX_TITLE_CHARS:
            raise _Invalid("bad_value", "note, reason or department is too long")
        assert command_id is not None and incident_id is not None and user is not None
        data = {"incident_id": incident_id, "action": action, "user": user, "note": note,
                "status": command_status(action, verify, followup_reopens, satisfaction)}
        if department:
            data["department"] = department
        if satisfaction:
            data["satisfaction"] = satisfaction
        if report:
            data["report"] = report
        return Event(command_id, "command", ts, None, None, None, data)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail)
