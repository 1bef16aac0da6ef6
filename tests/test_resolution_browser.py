"""The screen at every size it is made for, in headless Chromium (run: pytest -k res).

One page per size (`browser.SCREEN_SIZES`, CSS pixels at device scale 1, real
viewports, not zoom) shows the seeded city, then Xuhui through the screen's own
navigation. On each: nothing overflows its box or the viewport, every panel
heading and list is visible and shows rows, the selected area fills at least
60 % of the map's free part (below the time control), Plotly's text is sized
for the page's rem, a KPI tile holds the widest number it can be given, and no
console error (`no_console_errors` in conftest.py). The phone and tablet layout
has no touch target under 44 px. Screenshots: `scripts/screenshots.py`.
"""

from __future__ import annotations

import pytest

from tests import browser

pytestmark = pytest.mark.browser

XUHUI = "310104"
LAYOUTS = {(5760, 1620): "mosaic", (7680, 2160): "mosaic", (11520, 3240): "mosaic",
           (5760, 1080): "mosaic", (1080, 1920): "portrait", (768, 1024): "phone",
           (390, 844): "phone"}  # the others: "wall"
WIDEST_KPI = ("99,999", "9999万", "99.9万", "999k")  # `panels.compact`'s widest outputs


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    with browser.demo_city(tmp_path_factory.mktemp("resolution")) as city:
        yield city


def fill_and_fit(page, stack, area: str, timeout_ms: int) -> dict:
    """Wait until the map has fitted the area; how much of the map it fills."""
    bounds = stack.geography.frame.geometry.loc[area].bounds
    browser.wait_fitted(page, bounds, timeout_ms=timeout_ms)
    return browser.area_fill(page, bounds)


def text_sizes(page, timeout_ms: int) -> dict:
    """Plotly's text as drawn (map labels, trend axis, hover) and the page's rem.

    The trend chart draws on its own callback, after the map on a loaded machine:
    wait for its axis first.
    """
    page.wait_for_function("() => document.querySelector('#trend-graph .js-plotly-plot"
                           " .xtick text') !== null", timeout=timeout_ms)
    return page.evaluate(f"""() => {{
        const gd = document.querySelector('{browser.MAP}');
        const trend = document.querySelector('#trend-graph .js-plotly-plot');
        const names = gd._fullData.find(d => d.uid === 'risk-names');
        const tick = trend.querySelector('.xtick text');
        return {{rem: parseFloat(getComputedStyle(document.documentElement).fontSize),
                 label: names.textfont.size, hover: gd._fullLayout.hoverlabel.font.size,
                 tick: tick ? parseFloat(tick.style.fontSize) : null}}; }}""")


def widest_kpi_fits(page) -> list[str]:
    """The KPI values that would be clipped if they showed the widest number."""
    return page.evaluate("""widest => {
        const out = [];
        for (const id of ['kpi-today', 'kpi-open', 'kpi-overdue', 'kpi-closed']) {
            const tile = document.getElementById(id);
            const was = tile.textContent;
            for (const text of widest) {
                tile.textContent = text;
                if (tile.scrollWidth > tile.clientWidth + 1) out.push(`${id}: ${text}`);
            }
            tile.textContent = was;
        }
        return out; }""", list(WIDEST_KPI))


@pytest.mark.parametrize("size", browser.SCREEN_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_res010_every_size_fits_the_map_the_panels_and_the_text(stack, size):
    """One page at the size: the city, then Xuhui; every layout rule on each."""
    context = stack.chromium.new_context(viewport={"width": size[0], "height": size[1]},
                                         device_scale_factor=1)
    tried = browser.offline(context)
    patience = browser.patience_ms(size)
    try:
        page = context.new_page()
        page.goto(stack.base + "/?area=310000")
        browser.wait_map(page, 16, timeout_ms=patience)
        layout = page.evaluate("() => getComputedStyle(document.documentElement)"
                               ".getPropertyValue('--layout').trim()")
        assert layout == LAYOUTS.get(size, "wall")
        city = fill_and_fit(page, stack, "310000", patience)
        assert city["inside"] and max(city["width"], city["height"]) >= 0.6, city
        assert browser.layout_problems(page) == []
        sizes = text_sizes(page, patience)
        scale = sizes["rem"] / 16
        assert sizes["label"] == pytest.approx(14 * scale, abs=0.2)
        assert sizes["hover"] == pytest.approx(16 * scale, abs=0.2)
        assert sizes["tick"] == pytest.approx(14 * scale, abs=0.2)
        assert widest_kpi_fits(page) == []
        if layout == "phone":
            assert browser.small_touch_targets(page) == []
            order = page.evaluate("""() => ['#map-graph', '#kpi-row', '#detail-body',
                '#feed-list'].map(s => document.querySelector(s).getBoundingClientRect().top)""")
            assert order == sorted(order), "map first, then tiles, then the lists"
        if layout == "mosaic":  # the extra width holds more columns of panels
            columns = page.evaluate("""() => new Set(['#detail-body', '#top-list', '#map-graph',
                '#feed-list', '#overdue-list'].map(s => Math.round(
                    document.querySelector(s).getBoundingClientRect().left))).size""")
            assert columns == 5
        page.evaluate("""q => { history.pushState({}, '', '/' + q);
            window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""",
                      f"?area={XUHUI}")
        browser.wait_map(page, 957, timeout_ms=patience)
        district = fill_and_fit(page, stack, XUHUI, patience)
        assert district["inside"] and max(district["width"], district["height"]) >= 0.6, district
        assert browser.layout_problems(page) == []
    finally:
        context.close()
    assert tried == [], f"requests tried to leave the machine: {tried}"
