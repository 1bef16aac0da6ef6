"""Validation: one test per rule of the event contract (pure, no Redis)."""

from __future__ import annotations

import pytest

from dashboard.pipeline.contract import Event, Rejection, parse_entry, parse_ts
from dashboard.pipeline.coords import gcj02_to_bd09, to_wgs84, wgs84_to_gcj02
from tests.events import XUHUI_POINT, incident, now_ms, raw, risk, traffic

DAY_MS = 86_400_000


def parse(event: dict[str, str]) -> Event | Rejection:
    return parse_entry(raw(event), now_ms(), DAY_MS)


def rejected(event: dict[str, str], reason: str) -> Rejection:
    result = parse(event)
    assert isinstance(result, Rejection), f"accepted: {event}"
    assert result.reason == reason, result
    assert result.detail
    return result


def test_ctr001_valid_events_of_every_kind_are_accepted():
    for event in (incident("I1"), traffic("S1", 30, 60), risk("310104", "fire_hazards", 2)):
        result = parse(event)
        assert isinstance(result, Event), result
        assert result.kind == event["kind"]


@pytest.mark.parametrize("field", ["event_id", "kind", "ts"])
def test_ctr002_common_required_fields(field):
    event = incident("I1")
    del event[field]
    rejected(event, "missing_field")


@pytest.mark.parametrize("bad", ["", "a" * 65, "has space", "naïve", "a/b"])
def test_ctr003_event_id_charset_and_length(bad):
    event = incident("I1", event_id=bad)
    rejected(event, "missing_field" if bad == "" else "bad_value")


def test_ctr004_unknown_kind():
    rejected({**incident("I1"), "kind": "weather"}, "unknown_kind")


@pytest.mark.parametrize("ts", ["2026-11-21T08:15:00", "yesterday", "2026-13-01T00:00:00+08:00",
                                "1.5e12", "", "21/11/2026 08:00+08:00"])
def test_ctr005_bad_timestamps(ts):
    rejected({**incident("I1"), "ts": ts}, "missing_field" if ts == "" else "bad_value")


def test_ctr006_timestamp_forms():
    assert parse_ts("2026-11-21T08:15:00+08:00") == parse_ts("2026-11-21T00:15:00Z")
    assert parse_ts("1763684100000") == 1763684100000
    rejected({**incident("I1"), "ts": str(now_ms(3 * 86400))}, "bad_value")  # far future
    rejected({**incident("I1"), "ts": "946684799999"}, "bad_value")  # before 2000


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "1e999", "0x10", "1,5",
                                   " 12", "1_000", "abc"])
def test_ctr007_non_finite_or_malformed_numbers(value):
    rejected(traffic("S1", 30, 60, speed_kmh=value), "bad_value")
    rejected({**risk("310104", "fire_hazards", 1), "value": value}, "bad_value")


def test_ctr008_coordinates_must_come_in_pairs_and_in_range():
    event = incident("I1")
    del event["lat"]
    rejected(event, "missing_field")
    rejected(incident("I1", point=(190.0, 31.0)), "bad_value")
    rejected(incident("I1", point=(121.0, -91.0)), "bad_value")


def test_ctr009_datums_are_converted_to_wgs84():
    true_lon, true_lat = XUHUI_POINT
    gcj = wgs84_to_gcj02(true_lon, true_lat)
    bd = gcj02_to_bd09(*gcj)
    for datum, (lon, lat) in (("gcj02", gcj), ("bd09", bd), ("wgs84", XUHUI_POINT)):
        result = parse(incident("I1", point=(lon, lat), coord=datum))
        assert isinstance(result, Event)
        assert result.lon == pytest.approx(true_lon, abs=1e-6)  # ~0.1 m
        assert result.lat == pytest.approx(true_lat, abs=1e-6)
    assert abs(gcj[0] - true_lon) > 1e-3  # the datums really differ here
    rejected(incident("I1", coord="utm"), "bad_value")
    assert to_wgs84(10.0, 50.0, "gcj02") == (10.0, 50.0)  # outside China: no offset


def test_ctr010_incident_required_fields():
    for field in ("incident_id", "status"):
        event = incident("I1")
        del event[field]
        rejected(event, "missing_field")
    event = incident("I1")
    del event["category"]
    rejected(event, "missing_field")  # category is required on reported
    assert isinstance(parse(incident("I1", status="dispatched", point=None)), Event)


def test_ctr011_unknown_status():
    rejected(incident("I1", status="done"), "unknown_status")


def test_ctr012_reported_needs_a_point():
    rejected(incident("I1", point=None, area_id="310104"), "missing_field")


def test_ctr013_incident_optional_fields():
    rejected(incident("I1", severity="5"), "bad_value")
    rejected(incident("I1", severity="two"), "bad_value")
    rejected(incident("I1", source="twitter"), "bad_value")
    rejected(incident("I1", title="x" * 201), "bad_value")
    rejected(incident("I1", sla_minutes="0"), "bad_value")
    rejected(incident("I1", sla_minutes="-5"), "bad_value")
    ok = parse(incident("I1", title="标题" * 100, severity="4", source="video_ai",
                        category="brand_new_code", department="城管", sla_minutes="90"))
    assert isinstance(ok, Event)
    assert ok.data["category"] == "brand_new_code"  # unknown categories are kept


def test_ctr014_traffic_rules():
    rejected(traffic("S1", 200), "bad_value")
    rejected(traffic("S1", -1), "bad_value")
    rejected(traffic("S1", 30, 0), "bad_value")
    event = traffic("S1", 30)
    del event["speed_kmh"]
    rejected(event, "missing_field")
    event = traffic("S1", 30)
    del event["lon"], event["lat"]
    rejected(event, "missing_field")
    assert isinstance(parse(traffic("S1", 0)), Event)
    assert isinstance(parse(traffic("S1", 199.9)), Event)


def test_ctr015_risk_rules():
    event = risk("310104", "fire_hazards", 1)
    del event["area_id"]
    rejected(event, "missing_field")
    rejected(risk("310104", "fire hazards", 1), "bad_value")
    event = risk("310104", "fire_hazards", 1)
    del event["value"]
    rejected(event, "missing_field")
    assert isinstance(parse(risk("310104", "fire_hazards", -3.5)), Event)


def test_ctr016_size_limits():
    rejected(incident("I1", department="x" * 5000), "too_large")
    big = incident("I1", **{f"extra_{i}": "y" * 3000 for i in range(6)})
    rejected(big, "too_large")


def test_ctr017_bad_encoding():
    event = raw(incident("I1"))
    event[b"title"] = b"\xff\xfe broken"
    result = parse_entry(event, now_ms(), DAY_MS)
    assert isinstance(result, Rejection) and result.reason == "bad_encoding"


def test_ctr018_contract_version():
    assert isinstance(parse(incident("I1", v="1")), Event)
    rejected(incident("I1", v="2"), "bad_value")


def test_ctr019_unknown_extra_fields_are_allowed():
    assert isinstance(parse(incident("I1", producer_note="hello")), Event)
