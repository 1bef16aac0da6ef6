"""The risk tree and its work orders in headless Chromium (run: pytest -k "rsk or pro").

A compound scored through a known tree: the area panel lists its categories first,
then the indicators behind them, as plain text; its work order (未诉先办) is in the
area's incident list and its panel says what triggered it.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from tests import browser
from tests.events import now_ms, risk
from tests.test_risk_tree import READINGS

pytestmark = pytest.mark.browser

# The test tree of test_risk_tree, with names that look like markup: shown as text.
TREE = """category,indicator,weight,saturation,name_zh,name_en
safety,,40,,公共<b>安全</b>,Public safety
safety,theft,3,10,盗窃警情,Theft
safety,fights,1,5,打架斗殴,Fights
fire,,60,,消防安全,Fire safety
fire,fire_hazards,2,4,消防<i>隐患</i>,Fire hazards
fire,blocked_exits,1,2,堵塞通道,Blocked exits
"""
EXTRA = {"theft": 10, "fights": 5}  # with READINGS' fire: 30 + 10 + 29 + 7 = 76, orange


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    folder = tmp_path_factory.mktemp("risk")
    tree = folder / "tree.csv"
    tree.write_text(TREE, encoding="utf-8")
    with browser.embedded_app(folder, CITYBRAIN_UPDATE_MS="400", CITYBRAIN_UPDATE_MODE="poll",
                              CITYBRAIN_RISK_TREE=str(tree),
                              CITYBRAIN_RISK_ORDERS="orange") as (settings, client, app):
        geography = app.server.extensions["citybrain"].geography
        area = geography.descendants_at("310104-S01", "compound")[0]
        t = now_ms() - 60_000
        for name, value in {**READINGS, **EXTRA}.items():
            client.xadd(settings.stream, risk(area, name, value, ts=t))
        with browser.background_worker(settings, client, geography), \
                browser.live_server(app) as base, sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            context = chromium.new_context(viewport={"width": 1920, "height": 1080})
            tried = browser.offline(context)
            page = context.new_page()
            yield SimpleNamespace(settings=settings, client=client, geography=geography,
                                  base=base, page=page, area=area)
            context.close()
            chromium.close()
            assert tried == [], f"requests tried to leave the machine: {tried}"


def test_rsk008_area_panel_categories_then_indicators_and_the_order(stack):
    page = stack.page
    page.goto(f"{stack.base}/?area={stack.area}")
    page.wait_for_selector("#detail-body .risk-categories li", timeout=30_000)
    assert page.inner_text("#detail-body .detail-score") == "76"
    categories = page.locator("#detail-body .risk-categories li")
    assert categories.locator(".factor-name").all_inner_texts() == ["公共<b>安全</b>", "消防安全"]
    assert categories.locator(".factor-points").all_inner_texts() == ["+40.0", "+36.0"]
    indicators = page.locator("#detail-body .risk-indicators li .factor-name")
    assert indicators.all_inner_texts() == ["盗窃警情", "打架斗殴", "消防<i>隐患</i>", "堵塞通道"]
    # the headings in that order: categories, then indicators
    headings = page.locator("#detail-body h3").all_inner_texts()
    assert headings.index("风险分类") < headings.index("风险因素")
    assert page.locator("#detail-body b, #detail-body i").count() == 0  # no markup made
    # The area's work order: in its incident list, and its panel says why
    iid = f"risk:{stack.area}:1"
    browser.open_incident(page, "#detail-body", iid, ready="#incident-trigger")
    assert page.inner_text("#incident-category") == "风险工单"
    assert page.inner_text("#incident-source") == "未诉先办"
    trigger = page.locator("#incident-trigger li .factor-name").all_inner_texts()
    assert trigger == ["公共<b>安全</b>", "消防安全",  # categories, then indicators
                       "盗窃警情", "消防<i>隐患</i>", "打架斗殴", "堵塞通道"]
    assert page.locator("#incident-panel b, #incident-panel i").count() == 0
