"""The contract's fast path for valid entries decides exactly as the field-by-field checks."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dashboard.demo.simulator import Simulator
from dashboard.geography import load_geography
from dashboard.kinds.base import Invalid, number
from dashboard.pipeline.contract import (
    Event,
    _fast_number,
    _parse_checked,
    _parse_valid,
    parse_entry,
)

NOW_S = 1_795_000_000.0
NOW_MS = int(NOW_S * 1000)
DAY_MS = 86_400_000

# a value of every field of every kind: the base entries mutations start from
_BASE = (
    {"event_id": "e-1", "kind": "incident", "ts": str(NOW_MS - 1000), "incident_id": "I-1",
     "status": "reported", "category": "garbage", "source": "hotline", "severity": "3",
     "title": "垃圾满溢", "department": "城管", "sla_minutes": "90", "lon": "121.4365",
     "lat": "31.1880", "coord": "gcj02"},
    {"event_id": "e-2", "kind": "incident", "ts": "2026-11-18T08:15:00+08:00",
     "incident_id": "I-1", "status": "closed"},
    {"event_id": "e-3", "kind": "traffic", "ts": str(NOW_MS), "segment_id": "S-9",
     "speed_kmh": "23.5", "free_flow_kmh": "60", "lon": "121.5440", "lat": "31.2210"},
    {"event_id": "e-4", "kind": "risk", "ts": str(NOW_MS), "indicator": "fever_reports",
     "value": "7", "area_id": "310104"},
    {"event_id": "e-5", "kind": "sensor", "ts": str(NOW_MS), "device_id": "D-1",
     "device_type": "water_level", "value": "31.5", "unit": "cm", "lon": "121.4365",
     "lat": "31.1880", "coord": "bd09", "v": "1"},
)
_FIELDS = sorted({name for base in _BASE for name in base} | {"v", "area_id", "coord"})
_TEXT = st.one_of(
    st.sampled_from(["", "1", "0", "-3", "1e999", "nan", "inf", " 1", "1_0", "1.", ".5",
                     "+.5e-3", "٣", "1e", "e5", "abc", "x" * 65, "wgs84", "gcj02", "bd09",
                     "mercator", "2", "2026-11-18T08:15:00Z", "2026-11-18T08:15:00",
                     "2026-13-18T08:15:00+08:00", "reported", "closed", "lost", "parade",
                     "traffic", "incident", "risk", "sensor", "smoke", "121.4", "31.2",
                     "200", "-200", str(NOW_MS + 2 * DAY_MS), "946684799999", "x" * 201]),
    st.text(max_size=12),
)


def _raw(fields: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in fields.items()}


def _same(raw: dict[bytes, bytes]) -> None:
    checked = _parse_checked(raw, NOW_MS, DAY_MS, False)
    fast = _parse_valid(raw, NOW_MS, DAY_MS)
    if fast is not None:
        assert fast == checked
    assert parse_entry(raw, NOW_MS, DAY_MS, convert=False) == checked
    assert parse_entry(raw, NOW_MS, DAY_MS) == _parse_checked(raw, NOW_MS, DAY_MS, True)


def test_cfp001_valid_demo_entries_take_the_fast_path_unchanged():
    sim = Simulator(None, "s", load_geography(None, "shanghai"), seed=3, clock=lambda: NOW_S)
    for fields in sim.flood_events(3000):
        raw = _raw(fields)
        fast = _parse_valid(raw, NOW_MS, DAY_MS)
        assert isinstance(fast, Event)
        assert fast == _parse_checked(raw, NOW_MS, DAY_MS, False)


@hsettings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_BASE), st.dictionaries(st.sampled_from(_FIELDS), _TEXT, max_size=4),
       st.lists(st.sampled_from(_FIELDS), max_size=2))
@example(_BASE[0], {}, [])
def test_cfp002_mutated_entries_decide_alike(base, changes, dropped):
    fields = {**base, **changes}
    for name in dropped:
        fields.pop(name, None)
    _same(_raw(fields))


@given(st.binary(max_size=8), st.integers(0, 5000))
def test_cfp003_bad_bytes_and_sizes_decide_alike(junk, size):
    raw = _raw(_BASE[2])
    raw[b"title"] = junk
    raw[b"note"] = b"x" * size
    _same(raw)


@given(_TEXT)
def test_cfp004_fast_number_accepts_what_number_accepts(text):
    try:
        expected = number({"n": text}, "n")
    except Invalid:
        expected = None
    fast = _fast_number(text)
    assert fast is None or fast == expected
