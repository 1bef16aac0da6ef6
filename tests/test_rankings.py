"""Routing and rankings end to end: a scripted month through the real streams and worker.

The clock is injected (worker and web): "now" is 2026-12-02 10:00 in Shanghai, the
month scripted is November 2026. Incidents are routed by a rules file, acknowledged,
resolved, verified or rejected, followed up, reopened; the rankings the API answers
are worked out by hand below, to the decimal (run: -k rnk).
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from dashboard.rankings import parse_period
from dashboard.routing import DEMO_RULES, RoutingError, load_routing
from dashboard.settings import Settings
from tests.events import incident

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=ZONE).timestamp()  # the injected clock
SECRET = "rankings-secret-" + "r" * 40
PASSWORD = "correct horse battery"
S1, S2, S3 = "310104-S01", "310104-S02", "310104-S03"
RULES = """category,area_id,severity,department,sla_minutes
garbage,,,环卫,60
garbage,310104-S02,,城管,120
manhole,,,市政,60
manhole,,4,市政,30
noise,,,街道办,120
"""


def ms(day: str, hhmm: str) -> int:
    """Epoch ms of a day (MM-DD, 2026) and time in Shanghai."""
    month, dom = (int(x) for x in day.split("-"))
    hour, minute = (int(x) for x in hhmm.split(":"))
    return int(datetime(2026, month, dom, hour, minute, tzinfo=ZONE).timestamp() * 1000)


def _point(geography, street):
    area = geography.areas[geography.descendants_at(street, "compound")[0]]
    return area.lon, area.lat


def script(geography) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The month's incident events and officials' commands (each with its time)."""
    events: list[dict[str, str]] = []
    commands: list[dict[str, str]] = []

    def report(iid, street, category, day, hhmm, source, **extra):
        events.append(incident(iid, ts=ms(day, hhmm), point=_point(geography, street),
                               category=category, source=source, **extra))

    def command(iid, action, day, hhmm, user="u1", **extra):
        commands.append({"command_id": f"cmd-{len(commands) + 1}", "action": action,
                         "incident_id": iid, "user": user, "role": "street",
                         "ts": str(ms(day, hhmm)), **extra})

    def cycle(iid, day, ack, resolved, verified):
        command(iid, "acknowledge", day, ack)
        command(iid, "close", day, resolved, user="u1")
        command(iid, "verify", day, verified, user="u2")

    # Street 1: A1 on time and satisfied; A2 late to respond and to close; A3 rejected,
    # closed on its restarted clock, then reopened by a dissatisfied resident; A4 untouched.
    report("A1", S1, "garbage", "11-03", "09:00", "hotline")
    cycle("A1", "11-03", "09:10", "09:40", "09:50")
    command("A1", "follow_up", "11-03", "12:00", satisfaction="satisfied")
    report("A2", S1, "garbage", "11-05", "10:00", "grid")
    cycle("A2", "11-05", "10:45", "10:50", "11:30")
    report("A3", S1, "manhole", "11-10", "08:00", "hotline", severity="4")
    command("A3", "acknowledge", "11-10", "08:05")
    command("A3", "close", "11-10", "08:20")
    command("A3", "reject", "11-10", "08:25", user="u2", reason="井盖未固定")
    command("A3", "close", "11-10", "08:40")
    command("A3", "verify", "11-10", "08:50", user="u2")
    command("A3", "follow_up", "11-10", "09:30", satisfaction="dissatisfied", note="仍松动")
    report("A4", S1, "noise", "11-20", "22:00", "video_ai")
    # Street 2: B1 routed by its area's rule; B2 reopened by a follow-up, closed again,
    # then satisfied; B3 came with its own department (not routed).
    report("B1", S2, "garbage", "11-04", "09:00", "hotline")
    cycle("B1", "11-04", "09:20", "10:00", "10:30")
    command("B1", "follow_up", "11-04", "12:00", satisfaction="basically_satisfied")
    report("B2", S2, "noise", "11-12", "14:00", "hotline")
    cycle("B2", "11-12", "14:10", "14:30", "15:00")
    command("B2", "follow_up", "11-12", "15:30", satisfaction="dissatisfied")
    command("B2", "close", "11-12", "16:00")
    command("B2", "verify", "11-12", "16:10", user="u2")
    command("B2", "follow_up", "11-12", "17:00", satisfaction="satisfied")
    report("B3", S2, "garbage", "11-25", "09:00", "grid", department="环卫")
    cycle("B3", "11-25", "09:05", "09:30", "09:40")
    # Street 3: C0 in October, C3 at 00:10 on November 1st (city time), C1 in November,
    # C2 today.
    report("C0", S3, "garbage", "10-31", "23:30", "grid")
    report("C3", S3, "noise", "11-01", "00:10", "grid")
    cycle("C3", "11-01", "00:20", "01:00", "01:30")
    report("C1", S3, "manhole", "11-08", "08:00", "grid", severity="2")
    cycle("C1", "11-08", "08:10", "08:30", "08:40")
    report("C2", S3, "garbage", "12-02", "08:00", "hotline")
    command("C2", "acknowledge", "12-02", "08:20")
    return events, commands


# Worked out by hand (docs/closed-loop.md): rates over the incidents received in the period.
MONTH_STREETS = [
    {"id": S3, "name": "示例街道 03", "received": 2, "response_rate": 1.0, "closure_rate": 1.0,
     "on_time_rate": 1.0, "rework_rate": 0.0, "satisfaction_rate": None, "score": 100.0,
     "rank": 1},
    {"id": S2, "name": "示例街道 02", "received": 3, "response_rate": 1.0, "closure_rate": 1.0,
     "on_time_rate": 1.0, "rework_rate": 0.3333, "satisfaction_rate": 1.0, "score": 95.0,
     "rank": 2},
    # 10*.5 + 25*.5 + 20*.5 + 15*(1-.25) + 30*.5 = 53.75
    {"id": S1, "name": "示例街道 01", "received": 4, "response_rate": 0.5, "closure_rate": 0.5,
     "on_time_rate": 0.5, "rework_rate": 0.25, "satisfaction_rate": 0.5, "score": 53.8,
     "rank": 3},
]
MONTH_DEPARTMENTS = [
    ("城管", 1, 100.0, 1), ("环卫", 3, 90.0, 2), ("街道办", 3, 83.3, 3), ("市政", 2, 50.0, 4)]


@pytest.fixture
def loop(tmp_path, redis_url, client, geography):
    rules = tmp_path / "rules.csv"
    rules.write_text(RULES, encoding="utf-8")
    settings = Settings.load(env={
        "REDIS_URL": redis_url, "CITYBRAIN_TZ": "Asia/Shanghai",
        "CITYBRAIN_CACHE_TTL_S": "0.001", "CITYBRAIN_AUDIT_DIR": str(tmp_path / "audit"),
        "CITYBRAIN_ROUTING_RULES": str(rules)}).replace(secret_key=SECRET)
    worker = Worker(settings, client, geography, name="w", clock=lambda: NOW)
    store = UserStore(client, settings.state_prefix, geography)
    store.add("boss", "city", PASSWORD)
    store.add("jiedao", "street", PASSWORD, S1)
    return settings, worker


def _apply(client, settings, worker, events, commands):
    for event in events:
        client.xadd(settings.stream, event)
    worker.work(burst=True)
    for command in commands:
        client.xadd(settings.command_stream, command)
    worker.work(burst=True)
    assert client.xlen(settings.dead_stream_key) == 0
    assert client.xlen(settings.command_stream + ":dead") == 0


def _http(settings, name):
    app = create_app(settings, clock=lambda: NOW).server
    http = app.test_client()
    assert http.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return http


def _ranking(http, level, period, **extra):
    query = "&".join(f"{k}={v}" for k, v in {"level": level, "period": period, **extra}.items())
    response = http.get(f"/api/v1/rankings?{query}")
    assert response.status_code == 200, response.data
    return response.get_json()


def test_rnk001_a_scripted_month_gives_known_rankings(loop, client, geography):
    settings, worker = loop
    _apply(client, settings, worker, *script(geography))
    http = _http(settings, "boss")
    month = _ranking(http, "street", "2026-11", area_id="310104")
    assert month == {"area_id": "310104", "level": "street", "period": "2026-11",
                     "from": "2026-11-01", "to": "2026-11-30", "rows": MONTH_STREETS}
    departments = _ranking(http, "department", "2026-11", area_id="310104")["rows"]
    assert [(r["id"], r["received"], r["score"], r["rank"]) for r in departments] == \
        MONTH_DEPARTMENTS
    assert departments[1]["response_rate"] == 0.6667 and departments[1]["on_time_rate"] == 0.6667
    assert departments[3]["closure_rate"] == 0.5 and departments[3]["satisfaction_rate"] == 0.0
    # today and the last 7 days hold C2 only (acknowledged in 20 min, open, not followed up):
    # (10*1 + 25*0 + 15*1) / (10 + 25 + 15) = 50.0; the last 30 days start on November 3rd.
    for period in ("today", "7d"):
        rows = _ranking(http, "street", period)["rows"]
        assert [(r["id"], r["received"], r["on_time_rate"], r["score"]) for r in rows] == [
            (S3, 1, None, 50.0)]
    thirty = _ranking(http, "street", "30d")
    assert (thirty["from"], thirty["to"]) == ("2026-11-03", "2026-12-02")
    assert [(r["id"], r["received"], r["score"]) for r in thirty["rows"]] == [
        (S2, 3, 95.0), (S3, 2, 82.1), (S1, 4, 53.8)]  # S3: (10 + 12.5 + 20 + 15) / 70


def test_rnk002_routing_dispatches_and_records_the_rule(loop, client, geography):
    settings, worker = loop
    _apply(client, settings, worker, *script(geography))
    http = _http(settings, "boss")
    expected = {"A1": ("环卫", 2), "B1": ("城管", 3), "A3": ("市政", 5), "A4": ("街道办", 6),
                "C1": ("市政", 4)}
    for iid, (department, line) in expected.items():
        detail = http.get(f"/api/v1/incidents/{iid}").get_json()
        assert detail["department"] == department, iid
        assert detail["history"][0]["user"] == "routing"
        assert detail["history"][0]["note"].startswith(f"rule {line}:")
    b3 = http.get("/api/v1/incidents/B3").get_json()
    assert b3["department"] == "环卫" and all(h["user"] != "routing" for h in b3["history"])
    a4 = orjson.loads(client.hget(settings.state_prefix + "open", "A4"))
    assert a4["st"] == "dispatched" and a4["due"] - a4["start"] == 120 * 60_000


def test_rnk003_shuffled_and_redelivered_gives_the_same(loop, client, geography):
    settings, worker = loop
    events, commands = script(geography)
    rnd = random.Random(12)
    again = events + rnd.sample(events, 8)
    rnd.shuffle(again)
    repeated = commands + rnd.sample(commands, 10)
    rnd.shuffle(repeated)
    _apply(client, settings, worker, again, repeated)
    _apply(client, settings, worker, rnd.sample(events, 5), rnd.sample(commands, 5))
    http = _http(settings, "boss")
    assert _ranking(http, "street", "2026-11", area_id="310104")["rows"] == MONTH_STREETS
    departments = _ranking(http, "department", "2026-11", area_id="310104")["rows"]
    assert [(r["id"], r["received"], r["score"], r["rank"]) for r in departments] == \
        MONTH_DEPARTMENTS
    assert orjson.loads(client.hget(settings.state_prefix + "inc", "A3"))["nre"] == 2


def test_rnk004_scope_csv_and_audit(loop, client, geography):
    settings, worker = loop
    _apply(client, settings, worker, *script(geography))
    jiedao = _http(settings, "jiedao")
    assert jiedao.get("/api/v1/rankings?level=street&period=2026-11&area_id=310104"
                      ).status_code == 403
    own = _ranking(jiedao, "street", "2026-11")
    assert own["area_id"] == S1 and own["rows"] == [{**MONTH_STREETS[2], "rank": 1}]
    # Departments as seen from street 1: its incidents only. 环卫 (A1, A2): 5 + 25 + 10 +
    # 15 + 30; 街道办 (A4): 15 / 50; 市政 (A3): 10 / 80.
    rows = _ranking(jiedao, "department", "2026-11", lang="en")["rows"]
    assert [(r["id"], r["received"], r["score"]) for r in rows] == [
        ("环卫", 2, 85.0), ("街道办", 1, 30.0), ("市政", 1, 12.5)]
    for bad in ("level=county&period=7d", "level=street&period=2026-13",
                "level=street&period=yesterday"):
        assert jiedao.get(f"/api/v1/rankings?{bad}").status_code == 400
    response = jiedao.get("/api/v1/export/rankings.csv?level=street&period=2026-11&lang=en")
    assert response.status_code == 200
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    assert table[0] == ["rank", "id", "name", "received", "response_rate", "closure_rate",
                        "on_time_rate", "rework_rate", "satisfaction_rate", "score"]
    assert table[1] == ["1", S1, "Demo Street 01", "4", "0.5", "0.5", "0.5", "0.25", "0.5",
                        "53.8"]
    audit = _http(settings, "boss").get("/api/v1/audit?action=export").get_json()
    assert any(e["user"] == "jiedao" and "rankings.csv" in e["detail"] for e in audit)


def test_rnk005_periods():
    assert parse_period("2024-02", NOW, ZONE).days()[-1] == "2024-02-29"
    assert parse_period("2026-12", NOW, ZONE).last.isoformat() == "2026-12-31"
    seven = parse_period("7d", NOW, ZONE)
    assert (seven.first.isoformat(), seven.last.isoformat()) == ("2026-11-26", "2026-12-02")
    with pytest.raises(ValueError, match="period"):
        parse_period("2026-1", NOW, ZONE)


@pytest.mark.parametrize(("text", "message"), [
    ("category,area,severity,department,sla_minutes\n", r"rules\.csv:1: the header"),
    (RULES + "garbage,,7,环卫,60\n", r"rules\.csv:7: severity"),
    (RULES + "garbage,999999,,环卫,60\n", r"rules\.csv:7: area_id '999999'"),
    (RULES + "garbage,,,天庭,60\n", r"rules\.csv:7: department '天庭'"),
    (RULES + "noise,,,城管,-5\n", r"rules\.csv:7: sla_minutes"),
    (RULES + "noise,,,城管,60\n", r"rules\.csv:7: the same .* as line 6"),
    (RULES + "noise,,城管\n", r"rules\.csv:7: 3 columns"),
])
def test_rte001_bad_rules_stop_the_start_naming_the_line(tmp_path, geography, settings, client,
                                                        text, message):
    path = tmp_path / "rules.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingError, match=message):
        load_routing(path, geography, settings.departments)
    with pytest.raises(RoutingError, match=message):  # the worker checks them as it starts
        Worker(settings.replace(routing_rules=str(path)), client, geography)


def test_rte002_the_most_specific_rule_wins(tmp_path, geography, settings):
    path = tmp_path / "rules.csv"
    path.write_text(RULES + "garbage,310104,4,消防,10\ngarbage,,4,交警,20\n", encoding="utf-8")
    routing = load_routing(path, geography, settings.departments)
    compound = geography.descendants_at(S2, "compound")[0]
    elsewhere = geography.descendants_at(S1, "compound")[0]
    assert routing.route("garbage", compound, "2").department == "城管"  # its street's row
    assert routing.route("garbage", compound, "4").department == "城管"  # area before severity
    assert routing.route("garbage", elsewhere, "4").department == "消防"  # district + severity
    assert routing.route("garbage", "310115", "4").department == "交警"  # severity alone
    assert routing.route("garbage", "310115", "1").department == "环卫"  # category alone
    assert routing.route("fire_hazard", compound, "4") is None
    shipped = load_routing(DEMO_RULES, geography, settings.departments)  # the demo's rules
    assert shipped.route("garbage", compound, "2").department == "环卫"
