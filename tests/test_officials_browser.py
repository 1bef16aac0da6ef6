"""District officials in headless Chromium: sign-in, scope, acting, look-back (run: -k off).

One Redis, one worker thread, one app server (with accounts, so every page
needs a session) and one Chromium serve the module; pages run offline. The
look-back timeline is written first, at known stream ids in the past, so that
the seeded city and the live events come after it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard.app import create_app
from dashboard.auth.audit import Audit
from dashboard.auth.users import User, UserStore
from dashboard.geography import load_geography
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.settings import Settings
from tests import browser
from tests.events import PUDONG_POINT, XUHUI_POINT, incident, now_ms

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SECRET = "officials-test-secret-" + "z" * 40
PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
HOUR = 3_600_000
ACT_ID = "OFF-ACT-1"
UPDATE = "/_dash-update-component"


def _timeline(client, settings) -> tuple[int, list[tuple[int, dict]]]:
    """Incidents arriving at known times, 3 to 1 hours ago (stream ids are arrival times)."""
    t0 = now_ms() - 3 * HOUR
    plan = [
        (t0, incident("LB-A", ts=t0, point=XUHUI_POINT)),
        (t0 + HOUR, incident("LB-B", ts=t0 + HOUR, point=XUHUI_POINT, severity="3")),
        (t0 + HOUR + 1, incident("LB-C", ts=t0 + HOUR, point=PUDONG_POINT)),
        (t0 + 2 * HOUR, incident("LB-A", status="closed", ts=t0 + 2 * HOUR, point=None)),
    ]
    for arrival, event in plan:
        client.xadd(settings.stream, event, id=f"{arrival}-0")
    return t0, plan


def _open_at(plan: list[tuple[int, dict]], moment: int, inside: set[str]) -> int:
    """Open incidents at `moment`, from the events alone."""
    open_ids: set[str] = set()
    where: dict[str, str] = {}
    for arrival, event in plan:
        if arrival > moment:
            break
        iid = event["incident_id"]
        if "lon" in event:
            where[iid] = "xuhui" if (float(event["lon"]), float(event["lat"])) == XUHUI_POINT \
                else "pudong"
        if event["status"] == "closed":
            open_ids.discard(iid)
        else:
            open_ids.add(iid)
    return sum(1 for i in open_ids if where[i] in inside)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = EmbeddedRedis(tmp_path_factory.mktemp("officials-redis"))
    server.start()
    settings = Settings.load(env={
        "REDIS_URL": server.url, "CITYBRAIN_CACHE_TTL_S": "1.0", "CITYBRAIN_UPDATE_MS": "1000",
        "CITYBRAIN_STALE_AFTER_S": "600", "CITYBRAIN_BLOCK_MS": "200",
        "CITYBRAIN_AUDIT_DIR": str(tmp_path_factory.mktemp("officials-audit")),
        "CITYBRAIN_AUDIT_KEEP_DAYS": "100000"}).replace(
        secret_key=SECRET)
    client = connect(server.url)
    geography = load_geography(None, "shanghai")
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    t0, plan = _timeline(client, settings)
    app = create_app(settings)
    browser.seed(client, settings, geography, incidents=40)
    # Overdue 15 hours on a 1-minute SLA: first in Xuhui's lists, escalated to the district.
    client.xadd(settings.stream, incident(ACT_ID, ts=now_ms() - 15 * HOUR, point=XUHUI_POINT,
                                          severity="4", sla_minutes="1",
                                          category="manhole", title="井盖缺失 徐家汇"))
    with browser.background_worker(settings, client, geography), \
            browser.live_server(app) as base, sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        yield SimpleNamespace(server=server, settings=settings, client=client, app=app,
                              geography=geography, base=base, chromium=chromium, t0=t0,
                              plan=plan)
        chromium.close()
    client.close()
    server.stop()


def _signed_in(stack, name: str):
    """A new offline browser context signed in through the /login form, on its home page."""
    context = stack.chromium.new_context(viewport={"width": 1920, "height": 1080})
    context.tried = browser.offline(context)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.updates = []
    page.on("request", lambda r: page.updates.append(r.post_data)
            if UPDATE in r.url and r.post_data else None)
    page.statuses = []
    page.on("response", lambda r: page.statuses.append(r.status)
            if UPDATE in r.url else None)
    page.goto(stack.base + "/")
    assert "/login" in page.url
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#kpi-open", timeout=20_000)
    return page


@pytest.fixture(scope="module")
def official(stack):
    page = _signed_in(stack, "xuhui")
    yield page
    page.context.close()
    assert page.context.tried == [], f"requests tried to leave the machine: {page.context.tried}"
    assert page.dialogs == [], "a script ran from untrusted text"


@pytest.fixture(scope="module")
def boss(stack):
    page = _signed_in(stack, "boss")
    yield page
    page.context.close()
    assert page.context.tried == []


@contextlib.contextmanager
def held_choices(stack, seconds: float = 1.5):
    """The test server holds its answer to a change of the chosen incident `seconds`."""
    inner = stack.app.server.wsgi_app

    def held(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO", "").endswith(UPDATE):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            if b'"incident-sel.data' in body:
                time.sleep(seconds)
        return inner(environ, start_response)

    stack.app.server.wsgi_app = held
    try:
        yield
    finally:
        stack.app.server.wsgi_app = inner


def number(page, selector: str) -> int:
    return int(page.inner_text(selector).replace(",", "").strip())


def wait_number(page, selector: str, value: int, timeout: int = 8_000) -> None:
    page.wait_for_function(
        "([s, n]) => { const e = document.querySelector(s);"
        " return e && e.innerText.replace(/,/g, '').trim() === String(n); }",
        arg=[selector, value], timeout=timeout)


def summary(stack, area_id: str, **params) -> dict:
    with stack.app.server.test_client() as http:
        http.post("/login", data={"name": "boss", "password": PASSWORD})
        query = "&".join(f"{k}={v}" for k, v in {"area_id": area_id, **params}.items())
        return http.get(f"/api/v1/summary?{query}").get_json()


def test_off001_official_signs_in_and_sees_only_their_district(official, boss, stack):
    page = official
    assert page.inner_text("#who-name") == "xuhui"
    assert "徐汇区" in page.inner_text("#who-scope") and "区级" in page.inner_text("#who-role")
    assert page.get_attribute("#sign-out", "href") == "/logout"
    assert page.locator("#audit-open").count() == 0  # the audit log is for city operators
    assert "徐汇区" in page.inner_text("#detail-title")
    assert page.locator("#crumbs a").count() == 0  # nothing above their district to go to
    assert page.inner_text("#crumbs").startswith("上海市")
    wait_number(page, "#kpi-open", summary(stack, "310104")["incidents"]["open"])
    # Huangpu by URL: refused on the server, and the screen goes back to Xuhui.
    page.statuses.clear()
    browser.go(page, "?area=310101")
    page.wait_for_function("() => location.search.includes('area=310104')", timeout=8_000)
    page.wait_for_selector("#detail-title:has-text('徐汇区')", timeout=8_000)
    page.wait_for_timeout(800)
    # Refused on the server without an HTTP error (the renderer would log one): no data.
    assert page.statuses and set(page.statuses) <= {200, 204}
    text = page.inner_text("body")
    assert "黄浦" not in text
    locations = page.evaluate("""() => document.querySelector('#map-graph .js-plotly-plot')
        .data.find(d => d.uid === 'risk-fill').locations""")
    assert locations and all(a.startswith("310104") for a in locations)
    # The tick's own request, replayed with Huangpu in the URL state.
    deadline = time.monotonic() + 20  # a loaded machine can hold a tick back a while
    while not (ticks := [b for b in page.updates if "kpi-row.children" in b]):
        assert time.monotonic() < deadline, "no tick request seen"
        page.wait_for_timeout(100)
    body = json.loads(ticks[-1])
    for item in body["state"]:
        if item["id"] == "url" and item["property"] == "search":
            item["value"] = "?area=310101"
    data = json.dumps(body)
    headers = {"Content-Type": "application/json"}
    refused = page.context.request.post(stack.base + UPDATE, data=data, headers=headers)
    assert refused.status == 204 and refused.text() == ""  # refused: nothing to update
    anonymous = urllib.request.Request(stack.base + UPDATE, data=data.encode(),
                                       headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(anonymous, timeout=10)
    assert denied.value.code == 401
    # The same request from a city operator gets Huangpu.
    allowed = boss.context.request.post(stack.base + UPDATE, data=data, headers=headers)
    assert allowed.status == 200
    shown = allowed.json()["response"]
    huangpu = summary(stack, "310101")["incidents"]["open"]
    assert f'"{huangpu:,}"' in json.dumps(shown["kpi-row"], ensure_ascii=False) or huangpu == 0
    # Every refusal is in the audit log.
    with stack.app.server.test_client() as http:
        http.post("/login", data={"name": "boss", "password": PASSWORD})
        audit = http.get("/api/v1/audit").get_json()
    assert any(e["action"] == "denied" and e["user"] == "xuhui" and e["target"] == "310101"
               for e in audit)


def _open_incident(page, where: str = "#overdue-list", incident_id: str = ACT_ID) -> None:
    """Click the incident's row (again if a redraw of the list swallowed the click)."""
    browser.open_incident(page, where, incident_id)


def _sees(page, status: str) -> float:
    """Seconds until the open incident panel shows the status.

    Typically 0-4.6 s here (the issue asks for 5); the wait allows 10 s because on a
    2-core machine two software-rendered Chromiums, the server and the worker share
    the CPU, and a timing flake must not fail CI. The measured time is printed.
    """
    started = time.monotonic()
    page.wait_for_function(
        "s => document.querySelector('#incident-status')?.innerText === s", arg=status,
        timeout=20_000)
    return time.monotonic() - started


def test_off002_dispatch_note_and_close_from_the_page(official, boss, stack):
    # The city operator watches the incident's street (a second screen, another scope).
    record = json.loads(stack.client.hget(stack.settings.state_prefix + "inc", ACT_ID))
    street = stack.geography.chain(record["area"])[-3]
    assert stack.geography.areas[street].level == "street"
    browser.go(boss, f"?area={street}")
    boss.wait_for_selector(f"#detail-title:has-text('{stack.geography.name(street, 'zh-CN')}')",
                           timeout=20_000)
    _open_incident(boss)
    assert boss.inner_text("#incident-status") == "已上报"
    page = official
    browser.go(page, "?area=310104")
    # The overdue list: the 15-hour-late incident first, escalated to this district.
    first = page.locator("#overdue-list li").first
    first.wait_for(timeout=20_000)
    assert ACT_ID in (first.get_attribute("id") or "")
    assert "已升级至本级" in first.inner_text()
    _open_incident(page, "#detail-body")
    assert page.inner_text("#incident-title") == "井盖缺失 徐家汇"
    assert page.inner_text("#incident-overdue") == "是"
    page.click("#act-dept")
    page.click("[role=option]:has-text('环卫')")
    page.click("#act-dispatch")
    page.wait_for_selector("#act-msg.is-ok", timeout=20_000)
    assert "派单 → 环卫" in page.inner_text("#act-msg")
    print(f"the second screen saw the dispatch after {_sees(boss, '已派遣'):.1f} s")
    page.wait_for_function(
        "() => document.querySelector('#incident-department').innerText === '环卫'",
        timeout=20_000)
    # A note with markup stays text.
    page.fill("#act-note-text", XSS)
    page.click("#act-note")
    page.wait_for_function(
        "t => document.querySelector('#incident-history').innerText.includes(t)", arg=XSS,
        timeout=20_000)
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert page.dialogs == []
    # The second screen's open panel shows the new note too (a note changes no status).
    boss.wait_for_function(
        "t => document.querySelector('#incident-history').innerText.includes(t)", arg=XSS,
        timeout=20_000)
    assert boss.evaluate("() => document.querySelectorAll('img').length") == 0
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "official-1920x1080.png"))
    fits = page.evaluate("() => [document.documentElement.scrollWidth <= innerWidth,"
                         " document.documentElement.scrollHeight <= innerHeight]")
    assert fits == [True, True], "the official's screen scrolls at 1920x1080"
    assert browser.clipped_headings(page) == [], "headings squeezed by their lists"
    # Close with a result: resolved, waiting for another account to verify it (核查结案).
    page.fill("#act-result", "已更换井盖")
    page.click("#act-close")
    page.wait_for_selector("#act-msg:has-text('办结')", timeout=20_000)
    print(f"the second screen saw the resolution after {_sees(boss, '已处置'):.1f} s")
    page.wait_for_function(
        "() => document.querySelector('#incident-history').innerText.includes('已更换井盖')",
        timeout=20_000)
    page.click("#act-verify")  # its own work: refused on the server, said on the panel
    page.wait_for_selector("#act-msg.is-error:has-text('different account')", timeout=20_000)
    boss.click("#act-verify")
    boss.wait_for_selector("#act-msg.is-ok:has-text('核查通过')", timeout=20_000)
    print(f"the first screen saw the verification after {_sees(page, '已结案'):.1f} s")
    commands = [f for _, f in stack.client.xrange(stack.settings.command_stream)
                if f[b"incident_id"] == ACT_ID.encode()]
    assert [c[b"action"] for c in commands] == [b"dispatch", b"note", b"close", b"verify"]
    assert commands[0][b"department"] == "环卫".encode()
    assert commands[1][b"note"] == XSS.encode()
    assert [c[b"user"] for c in commands] == [b"xuhui"] * 3 + [b"boss"]
    # The city operator's audit log shows who did it.
    boss.click("#audit-open")
    boss.wait_for_selector("#audit-modal:not(.hidden) #audit-table", timeout=20_000)
    table = boss.inner_text("#audit-table")
    for action in ("dispatch", "note", "close", "verify"):
        assert action in table
    assert "xuhui" in table and ACT_ID in table
    boss.click("#audit-close")
    assert page.context.request.get(stack.base + "/api/v1/audit").status == 403
    page.click("#incident-close")
    page.wait_for_selector("#incident-panel.hidden", state="attached", timeout=20_000)


def test_off003_look_back_shows_the_numbers_of_that_moment(official, stack):
    page = official
    moment = stack.t0 + 90 * 60_000  # A and B open in Xuhui, C in Pudong
    expected = _open_at(stack.plan, moment, {"xuhui"})
    assert expected == 2
    browser.go(page, f"?area=310104&at={moment}")
    page.wait_for_selector("#replay-marker.is-replay", timeout=20_000)
    wait_number(page, "#kpi-open", expected)
    assert "回看 / Replay" in page.inner_text("#replay-marker")
    assert page.get_attribute("#screen", "class").endswith("is-replay")
    assert "黄浦" not in page.inner_text("body")
    # One click back to live.
    page.click("#replay-live")
    page.wait_for_selector("#replay-marker.is-live", timeout=20_000)
    wait_number(page, "#kpi-open", summary(stack, "310104")["incidents"]["open"])
    # Play from the slider's start at 600x: the marker runs forward.
    page.statuses.clear()
    page.click("#replay-play600")
    page.wait_for_selector("#replay-marker:has-text('600×')", timeout=8_000)
    first = page.inner_text("#replay-marker")
    page.wait_for_function("m => document.querySelector('#replay-marker').innerText !== m",
                           arg=first, timeout=8_000)  # 10 minutes of the past per second
    # The slider's handle follows the play, and moving it does not stop the play.
    handle = "#replay-slider [role=slider]"
    start = int(page.get_attribute(handle, "aria-valuenow"))
    page.wait_for_function(
        "([h, v]) => Number(document.querySelector(h).getAttribute('aria-valuenow')) > v + 10",
        arg=[handle, start], timeout=8_000)
    page.wait_for_timeout(1500)
    assert "600×" in page.inner_text("#replay-marker")
    assert all(status == 200 for status in page.statuses)
    page.click("#replay-live")
    page.wait_for_selector("#replay-marker.is-live", timeout=20_000)


def test_off004_city_operator_looks_back_at_the_whole_city(boss, stack):
    moment = stack.t0 + 150 * 60_000  # A closed; B (Xuhui) and C (Pudong) open
    browser.go(boss, f"?area=310000&at={moment}")
    boss.wait_for_selector("#replay-marker.is-replay", timeout=20_000)
    wait_number(boss, "#kpi-open", _open_at(stack.plan, moment, {"xuhui", "pudong"}))
    assert summary(stack, "310000", at=moment)["incidents"]["open"] == 2
    boss.click("#replay-live")
    boss.wait_for_selector("#replay-marker.is-live", timeout=20_000)


def test_off005_incident_panel_looks_back_with_the_screen(official, stack):
    """While looking back the panel shows the incident as it was, and offers no actions."""
    page = official
    moment = stack.t0 + 100 * 60_000  # LB-B reported 40 minutes before, still open
    browser.go(page, f"?area=310104&at={moment}")
    page.wait_for_selector("#replay-marker.is-replay", timeout=20_000)
    _open_incident(page, "#detail-body", "LB-B")
    page.wait_for_selector("#incident-replay", timeout=20_000)
    assert "回看" in page.inner_text("#incident-replay")
    assert page.inner_text("#incident-status") == "已上报"
    assert not page.is_visible("#act-dispatch")
    # The same incident, closed live since: back to live, the panel follows with actions.
    stack.client.xadd(stack.settings.stream, incident(
        "LB-B", status="closed", ts=now_ms(), point=None))
    page.click("#replay-live")
    page.wait_for_selector("#replay-marker.is-live", timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('#incident-status')?.innerText === '已结案'",
        timeout=20_000)
    assert page.locator("#incident-replay").count() == 0
    assert page.is_visible("#act-dispatch")
    page.click("#incident-close")  # once: a redraw of the lists must not lose it
    page.wait_for_selector("#incident-panel.hidden", state="attached", timeout=20_000)


def test_off006_a_click_on_the_map_opens_the_incident(official, stack):
    page = official
    point = (XUHUI_POINT[0] + 0.004, XUHUI_POINT[1] - 0.003)  # a point of its own
    stack.client.xadd(stack.settings.stream, incident(
        "OFF-MAP-1", point=point, severity="4", category="garbage", title="地图点击"))
    browser.go(page, "?area=310104")
    page.wait_for_function(
        """([x, y]) => { const gd = document.querySelector('#map-graph .js-plotly-plot');
            const t = gd && gd.data.find(d => d.uid === 'incidents-points');
            return t && t.lon.some((v, i) => Math.abs(v - x) < 1e-6
                                          && Math.abs(t.lat[i] - y) < 1e-6); }""",
        arg=list(point), timeout=20_000)
    for _ in range(3):  # as a user does: point at it (its label shows), then click
        page.wait_for_timeout(1000)  # let the map draw the new point
        xy = page.evaluate(
            """([x, y]) => { const gd = document.querySelector('#map-graph .js-plotly-plot');
                const map = gd._fullLayout.map._subplot.map;
                const p = map.project([x, y]);
                const box = map.getCanvas().getBoundingClientRect();
                return [box.left + p.x, box.top + p.y]; }""", list(point))
        page.mouse.move(xy[0] - 20, xy[1] - 20)
        page.mouse.move(*xy, steps=5)
        page.wait_for_timeout(300)
        page.mouse.click(*xy)
        try:
            page.wait_for_selector("#incident-panel:not(.hidden) #incident-title",
                                   timeout=4_000)
            break
        except PlaywrightTimeout:
            continue
    else:
        raise AssertionError("a click on the incident's point did not open its panel")
    assert page.inner_text("#incident-title") == "地图点击"
    assert "310104" in page.evaluate("() => location.search")  # the click kept the area
    page.click("#incident-close")


def test_off007_export_link_downloads_the_areas_open_incidents(official, stack):
    page = official
    browser.go(page, "?area=310104")
    page.wait_for_selector("#detail-title:has-text('徐汇区')", timeout=8_000)
    with page.expect_download(timeout=10_000) as download:
        page.click("#export-csv")
    assert download.value.suggested_filename.startswith("incidents-310104-")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table and all(row["area_id"].startswith("310104") for row in table)
    assert len(table) == summary(stack, "310104")["incidents"]["open"]


def test_off008_audit_view_filters_and_pages_through_the_whole_history(boss, stack):
    moment = [datetime(2031, 3, 4, 9, 0, tzinfo=stack.settings.zone).timestamp()]
    other = Audit.build(stack.settings, stack.client, stack.geography, lambda: moment[0])
    for i in range(130):  # another process's file, on a day of its own (injected clock)
        moment[0] += 60
        other.record(User("auditor7", "district", "310104"), "10.1.1.1", "note", f"AU-{i}",
                     f"#{i}", area="310104")
        other.record(User("someone", "city", "310000"), "10.1.1.2", "note", "AU-x", "x")

    def first_cells() -> list[str]:
        return boss.eval_on_selector_all("#audit-table tbody tr td:nth-child(5)",
                                         "tds => tds.map(td => td.innerText)")

    def wait_first(detail: str, rows: int) -> None:
        boss.wait_for_function(
            "([d, n]) => { const r = document.querySelectorAll('#audit-table tbody tr');"
            " return r.length === n && r[0].children[4].innerText === d; }",
            arg=[detail, rows], timeout=30_000)  # a busy machine: callbacks queue

    boss.click("#audit-open")
    boss.wait_for_selector("#audit-modal:not(.hidden) #audit-table", timeout=30_000)
    boss.fill("#audit-from", "2031-03-04")
    boss.press("#audit-from", "Enter")
    boss.fill("#audit-user", "auditor7")
    boss.press("#audit-user", "Enter")
    wait_first("#129", 100)
    assert first_cells() == [f"#{i}" for i in range(129, 29, -1)]
    assert boss.is_enabled("#audit-older")
    boss.click("#audit-older")
    wait_first("#29", 30)
    assert first_cells() == [f"#{i}" for i in range(29, -1, -1)]
    assert boss.is_disabled("#audit-older")  # the last page
    boss.click("#audit-newest")
    wait_first("#129", 100)
    boss.fill("#audit-to", "someday")
    boss.press("#audit-to", "Enter")
    boss.wait_for_selector("#audit-error", timeout=30_000)
    boss.fill("#audit-to", "")
    boss.press("#audit-to", "Enter")
    wait_first("#129", 100)
    boss.click("#audit-close")
    boss.wait_for_selector("#audit-modal.hidden", state="attached", timeout=30_000)
    assert browser.CONSOLE.take() == []
    assert 500 not in boss.statuses


REJECT_ID = "OFF-REJ-1"


def test_off009_reject_from_the_panel_as_another_official(official, boss, stack):
    """xuhui resolves; the city operator rejects it with a reason: reopened, counted."""
    stack.client.xadd(stack.settings.stream, incident(
        REJECT_ID, ts=now_ms() - 14 * HOUR, point=XUHUI_POINT, severity="4", sla_minutes="1",
        category="garbage", source="hotline", title="垃圾满溢 漕溪路"))
    page = official
    browser.go(page, "?area=310104")
    page.wait_for_selector(f"#overdue-list li[id*='\"{REJECT_ID}\"']", timeout=20_000)
    _open_incident(page, "#overdue-list", REJECT_ID)
    page.fill("#act-result", "已清运")
    page.click("#act-close")
    page.wait_for_selector("#act-msg.is-ok:has-text('办结')", timeout=20_000)
    _sees(page, "已处置")
    browser.go(boss, "?area=310104")
    boss.wait_for_selector(f"#overdue-list li[id*='\"{REJECT_ID}\"']", timeout=20_000)
    _open_incident(boss, "#overdue-list", REJECT_ID)
    _sees(boss, "已处置")
    boss.click("#act-reject")  # no reason: refused
    boss.wait_for_selector("#act-msg.is-error", timeout=20_000)
    boss.fill("#act-reason", "<b>现场仍有垃圾</b>")
    boss.click("#act-reject")
    boss.wait_for_selector("#act-msg.is-ok:has-text('退回')", timeout=20_000)
    print(f"the official's screen saw the rejection after {_sees(page, '重新打开'):.1f} s")
    page.wait_for_function(
        "() => document.querySelector('#incident-reopen_count').innerText === '1'",
        timeout=20_000)
    page.wait_for_function(
        "t => document.querySelector('#incident-history').innerText.includes(t)",
        arg="<b>现场仍有垃圾</b>", timeout=20_000)
    assert page.evaluate("() => document.querySelectorAll('#incident-history b').length") == 0
    commands = [f for _, f in stack.client.xrange(stack.settings.command_stream)
                if f[b"incident_id"] == REJECT_ID.encode()]
    assert [(c[b"action"], c[b"user"]) for c in commands] == [(b"close", b"xuhui"),
                                                              (b"reject", b"boss")]
    assert commands[1][b"reason"] == "<b>现场仍有垃圾</b>".encode()
    for who in (page, boss):
        who.click("#incident-close")
        who.wait_for_selector("#incident-panel.hidden", state="attached", timeout=20_000)


def _api_ranking(stack, area_id: str, level: str, lang: str) -> list[str]:
    with stack.app.server.test_client() as http:
        http.post("/login", data={"name": "boss", "password": PASSWORD})
        answer = http.get(f"/api/v1/rankings?area_id={area_id}&level={level}&period=30d"
                          f"&lang={lang}").get_json()
    return [row["name"] for row in answer["rows"]]


def _table_names(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('#rank-table .rank-row')]
        .map(r => r.children[1].innerText)""")


def test_off010_rankings_panel_in_chinese_and_english(official, boss, stack):
    for i, department in enumerate(("环卫", "交警")):
        stack.client.xadd(stack.settings.stream, incident(
            f"RNK-{i}", ts=now_ms() - 30 * 60_000, point=XUHUI_POINT, department=department))
    assert browser.wait_for(lambda: {"环卫", "交警"} <= set(
        _api_ranking(stack, "310104", "department", "zh-CN")), timeout_s=20)
    browser.go(boss, "?area=310104&view=rankings")  # a view of its own, for a wall's tour
    boss.wait_for_selector("#rank-modal:not(.hidden) #rank-table .rank-row", timeout=20_000)
    assert boss.inner_text("#rank-heading") == "考核排名"
    head = boss.inner_text("#rank-table thead")
    for word in ("名次", "响应率", "结案率", "按期结案率", "返工率", "满意率", "综合得分"):
        assert word in head
    streets = _api_ranking(stack, "310104", "street", "zh-CN")
    assert streets and _table_names(boss) == streets
    assert all(name.startswith("示例街道") for name in streets)
    assert "徐汇区" in boss.inner_text("#rank-span")
    boss.click("#rank-level label:has-text('部门')")
    boss.wait_for_function("n => [...document.querySelectorAll('#rank-table .rank-row')]"
                           ".map(r => r.children[1].innerText).includes(n)", arg="交警",
                           timeout=20_000)
    assert _table_names(boss) == _api_ranking(stack, "310104", "department", "zh-CN")
    href = boss.get_attribute("#rank-csv", "href")
    assert "level=department" in href and "area_id=310104" in href
    boss.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    boss.screenshot(path=str(SCREENSHOTS / "rankings-1920x1080.png"))
    browser.go(boss, "?area=310104&lang=en&view=rankings")
    boss.wait_for_selector("#rank-heading:has-text('Rankings')", timeout=20_000)
    boss.wait_for_selector("#rank-modal:not(.hidden) #rank-table .rank-row", timeout=20_000)
    head = boss.inner_text("#rank-table thead")
    for word in ("Rank", "Response", "Closure", "On time", "Rework", "Satisfaction", "Score"):
        assert word in head
    assert _table_names(boss) == _api_ranking(stack, "310104", "street", "en")
    assert _table_names(boss)[0].startswith("Demo Street")
    boss.click("#rank-close")
    boss.wait_for_selector("#rank-modal.hidden", state="attached", timeout=20_000)
    browser.go(boss, "?area=310104")
    # The official opens it from the header: their own district's streets.
    page = official
    browser.go(page, "?area=310104")
    page.click("#rank-open")
    page.wait_for_selector("#rank-modal:not(.hidden) #rank-table .rank-row", timeout=20_000)
    assert _table_names(page) == streets
    page.click("#rank-close")
    page.wait_for_selector("#rank-modal.hidden", state="attached", timeout=20_000)


def test_off011_a_click_is_not_lost_to_a_list_redraw(official, stack):
    """One click on a row opens the panel and one on ✕ closes it, while the lists redraw.

    New overdue incidents arrive all the time, each later than any other (every tick
    redraws the top of the overdue list), and the server holds its answer to anything
    that sets the chosen incident back 1.5 s, so a redraw always comes between a click
    and its answer. When the rows and ✕ were a
    server callback, each redraw called it again and Dash dropped the overtaken answer:
    the click was lost.
    """
    page = official
    browser.go(page, "?area=310104")
    stop = threading.Event()

    def feed() -> None:
        k = 0
        while not stop.is_set():
            stack.client.xadd(stack.settings.stream, incident(
                f"REDRAW-{k}", ts=now_ms() - 240 * HOUR - k * 60_000, point=XUHUI_POINT,
                severity="3", sla_minutes="1", category="garbage", source="grid",
                title=f"redraw {k}"))
            k += 1
            stop.wait(0.3)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        with held_choices(stack):
            firsts = set()
            for _ in range(3):
                rows = page.locator("#overdue-list li[id*='REDRAW']")
                rows.first.wait_for(timeout=20_000)
                firsts.add(rows.first.get_attribute("id"))
                rows.first.click()
                page.wait_for_selector("#incident-panel:not(.hidden) #incident-title",
                                       timeout=20_000)
                assert page.inner_text("#incident-title").startswith("redraw")
                page.click("#incident-close")
                page.wait_for_selector("#incident-panel.hidden", state="attached", timeout=20_000)
            first_now = page.get_attribute("#overdue-list li[id*='REDRAW']", "id")
            assert len(firsts | {first_now}) > 1, "the overdue list did not redraw meanwhile"
    finally:
        stop.set()
        thread.join(5)


def test_off012_the_same_incident_opens_again_after_close(official, stack):
    """✕, then the same row again: the panel opens, though its timer was on when ✕ came.

    The server holds the answer to a choice 1.5 s, longer than the panel's 0.8 s timer.
    When ✕ left the timer on and the last shown incident's mark in place, every timer
    call found the incident unchanged since shown, answered "nothing new" and overtook
    the choice's own answer: the panel stayed closed for good.
    """
    page = official
    browser.go(page, "?area=310104")
    stack.client.xadd(stack.settings.stream, incident(
        "AGAIN-1", ts=now_ms() - 1000 * HOUR, point=XUHUI_POINT, severity="3",
        sla_minutes="1", category="garbage", source="grid", title="again 1"))
    row = page.locator("#overdue-list li[id*='AGAIN-1']")
    row.wait_for(timeout=20_000)
    with held_choices(stack):
        for _ in range(2):
            row.click()
            page.wait_for_selector("#incident-panel:not(.hidden) #incident-title",
                                   timeout=20_000)
            assert page.inner_text("#incident-title") == "again 1"
            page.click("#incident-close")
            page.wait_for_selector("#incident-panel.hidden", state="attached",
                                   timeout=20_000)


def test_off013_a_row_pressed_before_a_redraw_and_released_after_opens(official, stack):
    """The mouse goes down on a row, the list redraws (a new row on top) before it comes
    up: the pressed incident opens. The browser sends such a click to the list, not to a
    row (press and release on different rows); choosing on the click lost it."""
    page = official
    browser.go(page, "?area=310104")
    stack.client.xadd(stack.settings.stream, incident(
        "PRESS-1", ts=now_ms() - 2000 * HOUR, point=XUHUI_POINT, severity="3",
        sla_minutes="1", category="garbage", source="grid", title="press 1"))
    first = "#overdue-list li:first-child"
    page.wait_for_selector(f"{first}[id*='PRESS-1']", timeout=20_000)
    box = page.locator(first).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    stack.client.xadd(stack.settings.stream, incident(  # later still: the new top row
        "PRESS-2", ts=now_ms() - 3000 * HOUR, point=XUHUI_POINT, severity="3",
        sla_minutes="1", category="garbage", source="grid", title="press 2"))
    page.wait_for_selector(f"{first}[id*='PRESS-2']", timeout=20_000)
    page.mouse.up()
    page.wait_for_selector("#incident-panel:not(.hidden) #incident-title", timeout=20_000)
    assert page.inner_text("#incident-title") == "press 1"
    page.click("#incident-close")
    page.wait_for_selector("#incident-panel.hidden", state="attached", timeout=20_000)
