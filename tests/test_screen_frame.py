"""The screen without a browser: i18n, selection, frames, ticks, the shared cache (-k scf)."""

from __future__ import annotations

import contextlib
import gc
import re
import weakref
from datetime import datetime
from pathlib import Path

import pytest
from dash import Patch, no_update

from dashboard.app import create_app
from dashboard.i18n import LABELS, TEXT, label, pick_lang, t
from dashboard.pipeline.worker import Worker
from dashboard.screen import callbacks, update
from dashboard.screen.frame import frame_for
from dashboard.screen.layout import selection
from dashboard.screen.mapfig import CONTEXT_RIVERS, figure, patch
from dashboard.state.view import RawState, RiskModel, build_view
from tests.events import XUHUI_POINT, incident

SCREEN = Path(__file__).resolve().parent.parent / "dashboard" / "screen"



@contextlib.contextmanager
def request(app, path):
    """A request context that went through the app's guard (so it has a user)."""
    with app.server.test_request_context(path):
        app.server.preprocess_request()
        yield


def test_scf001_every_text_and_label_has_both_languages():
    for key, (zh, en) in TEXT.items():
        assert zh and en, key
        if key != "lang_switch":  # the link to the other language names it in itself
            assert not re.search(r"[\u4e00-\u9fff]", en), key
    for group, codes in LABELS.items():
        for code, (zh, en) in codes.items():
            assert zh and en, (group, code)
    assert label("category", "garbage", "zh-CN") == "垃圾"
    assert label("category", "brand_new", "en") == "brand_new"
    assert t("title", "en") == "City Operations Cockpit"


def test_scf002_language_and_area_from_the_query(geography):
    assert pick_lang("en") == "en" and pick_lang("EN-us") == "en"
    assert pick_lang(None) == "zh-CN" and pick_lang("fr", "en") == "en"
    assert selection("?area=310104&lang=en", geography, "zh-CN") == ("310104", "en")
    assert selection("", geography, "zh-CN") == ("310000", "zh-CN")
    assert selection("?area=nope", geography, "en") == ("310000", "en")


def test_scf003_no_html_rendering_of_untrusted_text():
    source = "\n".join(p.read_text() for p in SCREEN.glob("*.py"))
    assert "dangerouslySetInnerHTML" not in source and "Markdown" not in source


@pytest.fixture
def app(settings, client):
    return create_app(settings)


def _tick(app, search, sig):
    with request(app, "/_dash-update-component"):
        return callbacks.tick(2, search, sig, ["risk", "incidents"])


def test_scf004_tick_sends_only_what_changed(app, settings, client, geography):
    worker = Worker(settings, client, geography, name="scf")
    with request(app, "/"):
        services = app.server.extensions["citybrain"]
        frame, key = callbacks._frame("?area=310104")
        first = update.signature(frame, key)
    out = _tick(app, "?area=310104", first)
    assert set(out) == set(update.TICK_OUTPUTS)  # grouped: one named output each
    kpis, feed, trend, fig, sig = (out[k] for k in ("kpis", "feed", "trend", "map", "sig"))
    assert kpis is no_update and feed is no_update and fig is no_update and trend is no_update
    client.xadd(settings.stream, incident("N1", point=XUHUI_POINT, title="<script>x</script>"))
    worker.work(burst=True)
    out = _tick(app, "?area=310104", sig)
    kpis, feed, trend, fig, sig2 = (out[k] for k in ("kpis", "feed", "trend", "map", "sig"))
    assert kpis is not no_update and feed is not no_update and trend is not no_update
    assert isinstance(fig, Patch)
    changed = {op["location"][1] for op in fig.to_plotly_json()["operations"]}
    owners = sig2["owners"]
    assert {owners[i] for i in changed} == {"incidents"}  # the risk polygons did not travel
    text = str(feed)
    assert "<script>x</script>" in text  # as a plain string child, rendered as text by React
    # A browser whose signature is for another area gets the whole figure.
    out = _tick(app, "?area=310000", sig2)
    assert isinstance(out["map"], dict) and out["map"]["data"][0]["uid"] == "risk-fill"
    assert services.cache is not None


def test_scf005_twenty_clients_share_one_read_per_tick(settings, client):
    settings = settings.replace(cache_ttl_s=5.0)
    app = create_app(settings)
    cache = app.server.extensions["citybrain"].cache
    with request(app, "/"):
        frame, key = callbacks._frame("")
        sig = update.signature(frame, key)
    reads = cache.reads
    for _ in range(20):
        _tick(app, "", sig)
    assert cache.reads - reads <= 2  # one version check (+ one read if it moved)


def test_scf006_patch_is_none_when_nothing_changed(settings, client):
    app = create_app(settings)
    with request(app, "/"):
        services = app.server.extensions["citybrain"]
        view = services.cache.view()
        frame = frame_for(view, "310000", "zh-CN")
        assert frame_for(view, "310000", "zh-CN") is frame  # once per view
        hashes = frame.hashes()["traces"]
        assert patch(frame, hashes, hashes, ["risk", "incidents"]) == (None, hashes)
        # A hidden layer's change is not sent, and keeps its old hash to send it later.
        older = [dict(h) for h in hashes]
        for h, owner in zip(older, frame.trace_layers, strict=True):
            if owner == "traffic":
                h["lon"] = "old"
        assert patch(frame, older, hashes, ["risk", "incidents"]) == (None, older)
        changed, sent = patch(frame, older, hashes, ["traffic"])
        assert changed is not None and sent == hashes


def test_scf007_geometry_route(app):
    api = app.server.test_client()
    response = api.get("/geo/310104/street.json")
    assert response.status_code == 200 and "max-age" in response.headers["Cache-Control"]
    assert len(response.get_json()["features"]) == 13
    assert api.get("/geo/nope/street.json").status_code == 404
    assert api.get("/geo/310104/planet.json").status_code == 404


def test_scf008_replay_moment_from_the_url_or_the_time_control(settings):
    from dashboard.screen.source import replay_moment, window_ms
    from tests.events import now_ms

    now = now_ms()
    hour = 3_600_000
    assert replay_moment(None, "?area=310104", settings, now) is None  # live
    assert replay_moment(None, f"?at={now - hour}", settings, now) == now - hour
    assert replay_moment(None, "?at=garbage", settings, now) is None
    assert replay_moment({"at": None}, f"?at={now - hour}", settings, now) is None  # live wins
    paused = {"at": now - 2 * hour, "speed": 0, "since": now - 60_000}
    assert replay_moment(paused, "", settings, now) == now - 2 * hour
    playing = {"at": now - 2 * hour, "speed": 60, "since": now - 60_000}
    assert replay_moment(playing, "", settings, now) == now - hour  # 1 min at 60x
    assert replay_moment({**playing, "speed": 600}, "", settings, now) is None  # caught up
    assert replay_moment({"at": 0}, "", settings, now) == now - window_ms(settings)
    assert replay_moment({"at": "x"}, "", settings, now) is None


def test_scf009_breadcrumb_does_not_link_above_the_scope(geography):
    from dashboard.screen.panels import breadcrumb

    street = geography.chain("310104-R0001")[2]
    parts = breadcrumb(geography, street, "zh-CN", "310104")
    links = [p for p in parts if type(p).__name__ == "Link"]
    above = [p for p in parts if getattr(p, "className", "") == "crumb-above"]
    assert [p.children for p in links] == [geography.name("310104", "zh-CN")]
    assert [p.children for p in above] == [geography.name("310000", "zh-CN")]
    assert len([p for p in breadcrumb(geography, street, "zh-CN")
                if type(p).__name__ == "Link"]) == 2


def test_scf010_overdue_rows_mark_what_escalated_here(app, settings, client, geography):
    from dashboard.screen.frame import overdue_rows
    from tests.events import now_ms

    t = now_ms()
    point = (geography.areas["310104-R0001"].lon, geography.areas["310104-R0001"].lat)
    client.xadd(settings.stream, incident("LATE", ts=t - 100 * 60_000, sla_minutes="60",
                                          point=point))
    client.xadd(settings.stream, incident("VERY", ts=t - 200 * 60_000, sla_minutes="60",
                                          point=point))
    Worker(settings, client, geography, name="scf").work(burst=True)
    view = app.server.extensions["citybrain"].cache.view()
    rows = overdue_rows(view, "310104", "zh-CN", 2.0)
    assert [(r["id"], r["here"]) for r in rows] == [("VERY", True), ("LATE", False)]
    street = geography.chain("310104-R0001")[2]
    assert [r["here"] for r in overdue_rows(view, street, "zh-CN", 2.0)] == [False, False]


def test_scf011_replay_before_the_first_entry_twice(settings, client, geography):
    from datetime import datetime, timedelta

    from dashboard.state.replay import Replayer

    client.xadd(settings.stream, incident("N1"))
    replayer = Replayer(settings, client, geography)
    early = datetime.now(settings.zone) - timedelta(hours=5)
    assert replayer.view_at("u", early).summary("310000")["incidents"]["open"] == 0
    later = early + timedelta(minutes=10)  # forward from an empty cursor
    assert replayer.view_at("u", later).summary("310000")["incidents"]["open"] == 0


def test_scf012_callbacks_attach_through_dash_public_api(settings, client):
    apps = [create_app(settings), create_app(settings)]  # each app gets every callback
    for app in apps:
        deps = app.server.test_client().get("/_dash-dependencies").get_json()
        outputs = " ".join(d["output"] for d in deps)
        for wanted in ("kpi-row.children", "tick-sig.data", "act-msg.children", "replay.data",
                       "audit-body.children", "clock.children"):
            assert wanted in outputs, wanted
    dashboard = Path(__file__).resolve().parent.parent / "dashboard"
    source = "\n".join(p.read_text() for p in dashboard.rglob("*.py"))
    assert "dash._callback" not in source and "_callback_list" not in source
    assert "GLOBAL_CALLBACK" not in source and "_memo" not in source
def test_scf013_frames_do_not_keep_old_views_alive(settings, geography):
    model = RiskModel(settings.risk_model, settings.risk_thresholds)
    now = datetime.now(settings.zone)
    refs = []
    for _ in range(10):  # ten ticks
        view = build_view(RawState(), geography, model, now, 30.0)
        frame = frame_for(view, "310000", "zh-CN")
        assert frame_for(view, "310000", "zh-CN") is frame
        refs.append(weakref.ref(view))
    del view, frame
    gc.collect()
    assert [r for r in refs if r() is not None] == []  # each view (~6 MB live) is freed


def test_scf014_every_map_trace_has_its_own_place_in_the_style(app, geography):
    """Each trace is drawn under its own slot layer, the slots in the traces' order after
    every layer of the style, hidden traces included (assets/map-places.js keeps them)."""
    with request(app, "/?area=310104"):
        frame = frame_for(app.server.extensions["citybrain"].cache.view(), "310104", "zh-CN")
        drawn = figure(frame, geography, ["risk"])
    layers = [layer["id"] for layer in drawn["layout"]["map"]["style"]["layers"]]
    belows = [trace["below"] for trace in drawn["data"]]
    assert len(set(belows)) == len(belows) == len(frame.traces) > 3
    # the slots last, in the traces' order (with a context layer: its rivers over the first
    # trace, the fill; ctx005)
    assert geography.context is None and CONTEXT_RIVERS["id"] not in layers
    assert layers[-len(belows):] == belows
    assert {layer["type"] for layer in drawn["layout"]["map"]["style"]["layers"]
            if layer["id"] in belows} == {"background"}
    assert any(trace["visible"] is False for trace in drawn["data"])  # hidden: still placed
