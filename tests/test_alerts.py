"""Alert focus (告警联动) without a browser: which news alerts, throttling, scope, acknowledging.

Real Redis, the real worker; the view's clock is injected where time matters
(run: pytest -k alr).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboard import alerts
from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings, SettingsError
from dashboard.state.store import StateCache
from dashboard.state.view import build_view
from tests import dashcb
from tests.events import PUDONG_POINT, XUHUI_POINT, incident, now_ms, risk
from tests.test_sensor import sensor

MIN = 60_000
SECRET = "alerts-test-secret-" + "q" * 40
PASSWORD = "correct horse battery"
COMPOUND = "310104-R0001"


@pytest.fixture
def worker(settings, client, geography):
    return Worker(settings, client, geography, name="alerts-worker")


def send(client, settings, worker, *events) -> None:
    for event in events:
        client.xadd(settings.stream, event)
    worker.work(burst=True)


def current(settings, client, geography, at_ms: int | None = None, lang: str = "en",
            acked: frozenset[str] = frozenset()) -> list[alerts.Alert]:
    view = StateCache(settings, client, geography).view()
    if at_ms is not None:  # the same state at another moment
        view = build_view(view.raw, geography, view.model,
                          datetime.fromtimestamp(at_ms / 1000, settings.zone), 1e9)
    return alerts.alerts(view, settings, acked, lang)


def test_alr001_a_severity_4_incident_alerts_with_its_place_and_title(
        settings, client, geography, worker):
    t = now_ms(-60)
    send(client, settings, worker,
         incident("A1", ts=t, severity="4", title="<b>燃气泄漏</b>", category="fire_hazard",
                  source="hotline"),
         incident("A2", ts=t, severity="3", point=PUDONG_POINT),  # not severe enough
         incident("A1", status="dispatched", ts=t + 1000, point=None))  # not new
    found = current(settings, client, geography)
    assert [(a.id, a.kind, a.what) for a in found] == [(found[0].id, "incident", "<b>燃气泄漏</b>")]
    alert = found[0]
    assert (alert.lon, alert.lat) == XUHUI_POINT and alert.zoom == alerts.POINT_ZOOM
    assert alert.where.startswith("Xuhui") and alert.head == "Critical incident"
    assert "Severity: Critical" in alert.why and "Fire hazard" in alert.why
    assert "12345 hotline" in alert.why


def test_alr002_one_alert_per_area_per_throttle_and_only_recent_ones(
        settings, client, geography, worker):
    settings = settings.replace(alert_throttle_s=600.0)
    t = now_ms(-3600)
    send(client, settings, worker,
         incident("B1", ts=t, severity="4", title="first"),
         incident("B2", ts=t + 2 * MIN, severity="4", title="same place, 2 min later"),
         incident("B3", ts=t + 11 * MIN, severity="4", title="same place, 11 min later"),
         incident("B4", ts=t + 3 * MIN, severity="4", title="elsewhere", point=PUDONG_POINT))
    # seen 12 minutes after the first: B1 is older than the window (10 minutes)
    titles = [a.what for a in current(settings, client, geography, at_ms=t + 12 * MIN)]
    assert titles == ["same place, 11 min later", "elsewhere"]
    # 5 minutes after the first: newest first, B2 throttled by B1 (B3 is 10 min after B1)
    titles = [a.what for a in current(settings, client, geography, at_ms=t + 5 * MIN)]
    assert titles == ["same place, 11 min later", "elsewhere", "first"]
    # an hour later nothing is current
    assert current(settings, client, geography, at_ms=t + 71 * MIN) == []


def test_alr003_risk_rising_to_the_alert_level_sensor_alarms(settings, client, geography,
                                                              worker):
    t = now_ms(-120)
    rising = [risk(COMPOUND, name, value, ts=t + i * 1000) for i, (name, value) in enumerate(
        (("fire_hazards", 5), ("fever_reports", 10), ("repeat_complaints", 10)))]  # 65: yellow
    send(client, settings, worker, *rising,
         risk(COMPOUND, "flood_points", 1.5, ts=t + 5000),  # +10 = 75: orange
         sensor("W9", "water_level", "48", ts=t + 6000, point=PUDONG_POINT))
    kinds = [a.kind for a in current(settings, client, geography)]
    assert kinds == ["sensor"]  # orange is below the default level (red)
    sensor_alert = current(settings, client, geography)[0]
    assert sensor_alert.what == "Water level 48 cm" and "Alarm threshold: 30 cm" in sensor_alert.why
    orange = settings.replace(alert_level="orange")
    risk_alert = [a for a in current(orange, client, geography) if a.kind == "risk"]
    assert [a.what for a in risk_alert] == ["Yellow (III) → Orange (II)"]
    why = risk_alert[0].why.splitlines()
    assert why[0] == "Score: 75" and why[1] == "Fire hazards 5 +25.0"  # the indicators behind it
    assert risk_alert[0].area == COMPOUND
    send(client, settings, worker, risk(COMPOUND, "flood_points", 3, ts=t + 7000))  # 85: red
    assert [a.what for a in current(settings, client, geography) if a.kind == "risk"] == [
        "Orange (II) → Red (I)"]
    # with orange, the first of the area wins: one alert per area per 10 minutes
    assert [a.what for a in current(orange, client, geography) if a.kind == "risk"] == [
        "Yellow (III) → Orange (II)"]
    # falling back is news for the feed, never an alert
    send(client, settings, worker, risk(COMPOUND, "fire_hazards", 0, ts=t + 8000))
    feed = StateCache(settings, client, geography).view().raw.feed
    assert (feed[0]["from"], feed[0]["lv"]) == ("red", "yellow")
    assert [a.what for a in current(settings, client, geography) if a.kind == "risk"] == [
        "Orange (II) → Red (I)"]


@pytest.fixture
def app(settings, client, geography, worker):
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("pudong", "district", PASSWORD, "310115")
    send(client, settings, worker, incident("C1", ts=now_ms(-30), severity="4", title="塌陷"))
    return create_app(settings.replace(secret_key=SECRET)).server


def signed_in(app, name):
    http = app.test_client()
    assert http.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return http


def _tick_alerts(http) -> list[dict]:
    answer = dashcb.outputs(dashcb.post(http, "alert-list.data", {
        "url.search": "", "tick.n_intervals": 1, "map-layers.value": ["risk"]},
        ["tick.n_intervals"]))
    return answer["alert-list.data"]


def test_alr004_scope_and_an_audited_acknowledgement(app, settings, client, geography):
    xuhui, pudong = signed_in(app, "xuhui"), signed_in(app, "pudong")
    listed = _tick_alerts(xuhui)
    assert [a["what"] for a in listed] == ["塌陷"]
    assert _tick_alerts(pudong) == []  # outside Pudong: not even listed
    alert_id = listed[0]["id"]
    # Pudong's official forges an acknowledgement of it: refused, nothing stored
    forged = dashcb.outputs(dashcb.post(pudong, "alert-ack-done.data", {
        "alert-ack.n_clicks": 1, "alert-current.data": {"id": alert_id}}, ["alert-ack.n_clicks"]))
    assert forged["alert-ack-done.data"] == {"id": alert_id, "ok": False}
    assert alerts.acknowledged(client, settings, now_ms()) == frozenset()
    done = dashcb.outputs(dashcb.post(xuhui, "alert-ack-done.data", {
        "alert-ack.n_clicks": 1, "alert-current.data": {"id": alert_id}}, ["alert-ack.n_clicks"]))
    assert done["alert-ack-done.data"] == {"id": alert_id, "ok": True}
    assert alert_id in alerts.acknowledged(client, settings, now_ms())
    entries = app.extensions["citybrain_access"].audit.latest()
    ack = next(e for e in entries if e["action"] == "alert_ack")
    assert (ack["user"], ack["target"], ack["area"]) == ("xuhui", alert_id, listed[0]["area"])
    assert "塌陷" in ack["detail"]
    # acknowledged: no longer listed for anyone (the next view reads the acknowledgements)
    assert _tick_alerts(xuhui) == []


@pytest.mark.parametrize(("name", "value"), [
    ("CITYBRAIN_ALERT_LEVEL", "yellow"), ("CITYBRAIN_ALERT_SHOW_S", "0"),
    ("CITYBRAIN_ALERT_THROTTLE_S", "-5"), ("CITYBRAIN_TOUR_EVERY_S", "soon"),
    ("CITYBRAIN_TOUR_PAUSE_S", "nan"), ("CITYBRAIN_WALL_TOUR", "310000,<script>"),
])
def test_alr005_bad_alert_and_tour_settings_fail_naming_the_setting(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.load(env={name: value})


def test_alr006_a_wall_tour_of_unknown_areas_stops_the_start(settings):
    with pytest.raises(SettingsError, match=r"CITYBRAIN_WALL_TOUR.*999999"):
        create_app(settings.replace(wall_tour=("310000", "999999")))
