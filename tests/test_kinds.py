"""The registry of event kinds: every kind is complete, and none can leak out of a scope (-k knd).

Pure: no Redis, no browser.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from dashboard.demo import Simulator
from dashboard.geography import Geography
from dashboard.i18n import LABELS, LANGS, label
from dashboard.kinds import KINDS, REGISTERS, Kind
from dashboard.pipeline.contract import Event, parse_entry
from dashboard.settings import DEFAULT_RISK_MODEL, Settings
from dashboard.state.view import RawState, RiskModel, RiskReading, build_view

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events.md"
ZONE = ZoneInfo("Asia/Shanghai")
T0 = 1795305600.0  # the injected clock starts at 2026-11-22T00:00:00+08:00
NOW = datetime.fromtimestamp(T0 + 10 * 3600, ZONE)
IDS = [kind.name for kind in KINDS]


class Context:
    """What a kind's `row` needs from the worker."""

    settings = Settings.load(env={})

    def day_hour(self, ts: int) -> tuple[str, str]:
        moment = datetime.fromtimestamp(ts / 1000, ZONE)
        return moment.strftime("%Y-%m-%d"), moment.strftime("%H")

    def responsible(self, area: str) -> str:
        return area

    def route(self, category: str, area: str, severity: str) -> None:
        return None


@pytest.fixture(scope="module")
def simulator(geography: Geography) -> Simulator:
    return Simulator(None, "s", geography, seed=3, clock=lambda: T0 + 10 * 3600)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_knd001_every_kind_has_docs_labels_and_a_demo(kind: Kind, simulator: Simulator):
    headings = [line for line in DOCS.read_text().splitlines() if line.startswith("## ")]
    assert any(f"`kind={kind.name}`" in h for h in headings), "no section in docs/events.md"
    assert kind.doc and kind.labels
    for lang in LANGS:
        assert label("kind", kind.name, lang) != kind.name  # a name of its own
    for group in kind.labels:
        assert LABELS[group] and all(zh and en for zh, en in LABELS[group].values())
    demo = kind.demo(simulator)
    assert demo is not None and demo.weight(T0 + 10 * 3600) > 0
    event = demo.make(T0 + 10 * 3600)
    assert event["kind"] == kind.name


def _valid_event(kind: Kind, simulator: Simulator) -> Event:
    demo = kind.demo(simulator)
    assert demo is not None
    fields = {k.encode(): v.encode() for k, v in demo.make(T0 + 10 * 3600).items()}
    event = parse_entry(fields, int(T0 * 1000) + 11 * 3_600_000, 86_400_000)
    assert isinstance(event, Event), event
    return event


@pytest.mark.parametrize("kind", REGISTERS, ids=[k.name for k in REGISTERS])
def test_knd002_every_register_record_is_filtered_by_its_area(
    kind: Kind, simulator: Simulator, geography: Geography,
):
    event = _valid_event(kind, simulator)
    area = "310104-R0001"  # a Xuhui compound
    row = kind.row(event, area, "", Context())
    assert row["a"] == "reg" and row["h"] == kind.register
    assert all(not isinstance(v, list) for v in row.values())  # named fields, no rows
    record = kind.decode(row["f"], orjson.loads(row["v"]), Context.settings)
    assert isinstance(record, kind.record) and record.area == area  # type: ignore[arg-type]
    raw = RawState(records={kind.name: {row["f"]: record}})
    view = build_view(raw, geography, RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85)), NOW, 30)
    assert view.restricted_to("310104").raw.of(kind.name)  # kept in its own district
    assert not view.restricted_to("310105").raw.of(kind.name)  # gone from another one
    other = view.restricted_to("310105").summary("310105")
    assert kind.block is None or other[kind.block] == view.summary("310101")[kind.block]


def test_knd003_the_registry_names_each_kind_once_and_the_contract_lists_them():
    assert len(set(IDS)) == len(IDS)
    assert all(re.fullmatch(r"[a-z_]+", name) for name in IDS)
    rejected = parse_entry({b"event_id": b"x", b"kind": b"nope", b"ts": b"1795305600000"},
                           int(T0 * 1000), 1000)
    assert all(name in rejected.detail for name in IDS)  # type: ignore[union-attr]


def test_knd004_an_unweighted_indicator_does_not_disturb_the_risk_averages(
    geography: Geography,
):
    """An air-quality-like reading on other areas makes no scored area and moves no mean."""
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    scored = {"310104-R0001|fire_hazards": RiskReading("310104-R0001", "fire_hazards", 5, 1)}
    noise = {f"{a}|pm25": RiskReading(a, "pm25", 300.0, 1)
             for a in ("310104-R0002", "310104-R0003", "310104-R0001")}
    before = build_view(RawState(records={"risk": scored}), geography, model, NOW, 30)
    after = build_view(RawState(records={"risk": {**scored, **noise}}), geography, model,
                       NOW, 30)
    for area in ("310000", "310104"):
        old, new = before.summary(area)["risk"], after.summary(area)["risk"]
        assert new["score"] == old["score"] == 25.0
        assert new["scored_areas"] == old["scored_areas"] == 1
    assert "310104-R0002" not in after.own_risk  # pm25 alone scores nothing
    own = after.own_risk["310104-R0001"]  # a scored area still shows it, with 0 points
    assert {f["indicator"]: f["contribution"] for f in own[1]} == {"fire_hazards": 25.0,
                                                                   "pm25": 0.0}


def test_knd005_a_register_value_from_before_named_records_is_skipped():
    from dashboard.state.view import decode_records

    registers = {"traffic": {b"OLD": b"000|e1\t310104\t121.4\t31.1\t20.0\t60.0\t1",
                             b"NEW": b'000|e2\t{"area": "310104", "lon": 121.4, "lat": 31.1, '
                                     b'"speed_kmh": 20.0, "free_flow_kmh": 60.0, "ts": 1}'}}
    records = decode_records(registers)["traffic"]
    assert list(records) == ["NEW"] and records["NEW"].index == 3.0
