"""A merged case in headless Chromium: its reports in the incident panel, split (run: -k mrg).

One Redis, one worker thread (merging on: 100 m, 30 minutes; hotspots: 3 reports in
200 m and 7 days), one app server with a district official, and one offline Chromium.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import orjson
import pytest

from dashboard.auth.users import UserStore
from dashboard.geography import load_geography
from tests import browser
from tests.events import XUHUI_POINT, incident, now_ms

pytestmark = pytest.mark.browser

SECRET = "merge-test-secret-" + "q" * 40
PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
CASE = "MRG-H1"
T0 = now_ms(-15 * 3600)  # 15 hours ago on a 1-minute SLA: first in the overdue list
NORTH = 1 / 111_320  # degrees of latitude in a metre


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with browser.embedded_app(
            tmp_path_factory.mktemp("merge"), CITYBRAIN_SECRET_KEY=SECRET,
            CITYBRAIN_MERGE_METRES="100", CITYBRAIN_MERGE_MINUTES="30",
            CITYBRAIN_HOTSPOT_REPORTS="3", CITYBRAIN_HOTSPOT_METRES="200") as (settings,
                                                                               client, app):
        geography = load_geography(None, "shanghai")
        UserStore(client, settings.state_prefix, geography).add("xuhui", "district", PASSWORD,
                                                                "310104")
        lon, lat = XUHUI_POINT
        for iid, minutes, metres, source, title in (
                (CASE, 0, 0, "hotline", "垃圾满溢 漕溪路"),
                ("MRG-G1", 5, 40, "grid", "网格员：垃圾桶满"),
                ("MRG-V1", 12, 80, "video_ai", XSS)):
            client.xadd(settings.stream, incident(
                iid, ts=T0 + minutes * 60000, point=(lon, lat + metres * NORTH), source=source,
                title=title, severity="4", sla_minutes="1"))
        with browser.background_worker(settings, client, geography), \
                browser.live_server(app) as base, sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            yield SimpleNamespace(settings=settings, client=client, base=base,
                                  chromium=chromium)
            chromium.close()


@pytest.fixture(scope="module")
def official(stack):
    context = stack.chromium.new_context(viewport={"width": 1920, "height": 1080})
    context.tried = browser.offline(context)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(stack.base + "/")
    page.fill("#name", "xuhui")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#kpi-open", timeout=40_000)
    yield page
    context.close()
    assert context.tried == [], f"requests tried to leave the machine: {context.tried}"
    assert page.dialogs == [], "a script ran from untrusted text"


def _reports(page) -> list[str]:
    return page.eval_on_selector_all("#incident-reports li", "els => els.map("
                                     "e => e.getAttribute('data-report'))")


def test_mrg020_panel_lists_the_reports_as_text_and_an_official_splits_one(official, stack):
    page = official
    page.wait_for_selector(f"#overdue-list li[id*='\"{CASE}\"']", timeout=40_000)
    # merged reports are no rows of their own: one case, not three
    assert page.locator("#overdue-list li[id*='MRG-G1']").count() == 0
    page.click(f"#overdue-list li[id*='\"{CASE}\"']")
    page.wait_for_selector("#incident-reports li", timeout=40_000)
    assert _reports(page) == [CASE, "MRG-G1", "MRG-V1"]
    assert page.inner_text("#incident-reports-heading") == "合并上报 (3 条, 3 个来源)"
    listed = page.inner_text("#incident-reports")
    assert "12345热线" in listed and "网格员" in listed and "视频AI" in listed
    assert XSS in listed  # the event's text, shown as text
    assert page.evaluate("() => document.querySelectorAll('#incident-reports img').length") == 0
    # the first report heads the case: only the others can be split off
    assert page.locator("#incident-reports .ip-split").count() == 2
    page.click("#incident-reports li[data-report='MRG-V1'] .ip-split")
    page.wait_for_selector("#act-msg.is-ok:has-text('拆分')", timeout=40_000)
    page.wait_for_function("() => document.querySelectorAll('#incident-reports li').length"
                           " === 2", timeout=40_000)
    assert _reports(page) == [CASE, "MRG-G1"]
    record = orjson.loads(stack.client.hget(stack.settings.state_prefix + "inc", "MRG-V1"))
    assert record["case"] == "MRG-V1" and record["msp"] is True
    page.wait_for_selector("#overdue-list li[id*='\"MRG-V1\"']", timeout=40_000)
    commands = [f for _, f in stack.client.xrange(stack.settings.command_stream)]
    assert [(c[b"action"], c[b"incident_id"], c[b"report"], c[b"user"]) for c in commands] \
        == [(b"split", CASE.encode(), b"MRG-V1", b"xuhui")]
    audit = [f for _, f in stack.client.xrange(stack.settings.state_prefix + "audit")
             if f[b"action"] == b"split"]
    assert [(a[b"user"], a[b"target"], a[b"detail"]) for a in audit] == [
        (b"xuhui", CASE.encode(), b"MRG-V1")]
    page.click("#incident-close")
    page.wait_for_selector("#incident-panel.hidden", state="attached", timeout=40_000)


def test_mrg021_the_proactive_case_of_the_hotspot_is_on_the_screen(official, stack):
    """The three reports also make a hotspot: its proactive case is listed and opens."""
    page = official
    row = "#overdue-list li[id*='proactive:garbage:']"
    page.wait_for_selector(row, timeout=40_000)
    page.click(row)
    page.wait_for_function("() => (document.querySelector('#incident-source') || {})"
                           ".innerText === '未诉先办'", timeout=40_000)
    assert page.inner_text("#incident-reports-heading") == "触发的上报 (3 条)"
    assert _reports(page) == [CASE, "MRG-G1", "MRG-V1"]
    assert page.locator("#incident-reports .ip-split").count() == 0  # nothing to split
    assert XSS in page.inner_text("#incident-reports")
    page.click("#incident-close")
    page.wait_for_selector("#incident-panel.hidden", state="attached", timeout=40_000)
