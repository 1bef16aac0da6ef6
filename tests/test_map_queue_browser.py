"""Pushed map updates wait while the map draws, merged (run: pytest -k soa).

The soak found the wall's JS heap growing ~10 MB a minute under push: Dash's Graph
chains every new figure onto the draw before it, so updates faster than MapLibre draws
pile up. `assets/map-queue.js` holds them while a draw is under way and merges them.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from tests import browser

pytestmark = pytest.mark.browser

MAP = "#map-graph .js-plotly-plot"
WAIT_MS = 30_000
UPDATES = 40

# Feeds `UPDATES` Patches through the queue, one every 15 ms (faster than a map draws),
# each assigning layout.meta = i; counts the ones handed to Dash while a draw was pending.
BURST = """n => new Promise(done => {
  const gd = document.querySelector('#map-graph .js-plotly-plot');
  const out = window.__burst = {handed: 0, whileDrawing: 0};
  const apply = p => {
    out.handed += 1;
    if (gd.cockpitDrawing || gd.classList.contains('dash-graph--pending')) out.whileDrawing += 1;
    window.dash_clientside.set_props('map-graph', p);
  };
  let i = 0;
  const timer = setInterval(() => {
    window.cockpitMapQueue.put({figure: {__dash_patch_update: '__dash_patch_update',
      operations: [{operation: 'Assign', location: ['layout', 'meta'], params: {value: i}}]}},
      apply);
    i += 1;
    if (i === n) { clearInterval(timer); done(out); }
  }, 15);
})"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with browser.embedded_app(tmp_path_factory.mktemp("mapq"),
                              CITYBRAIN_UPDATE_MODE="poll") as (_settings, _client, app), \
            browser.live_server(app) as base, sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        context = chromium.new_context(viewport={"width": 1920, "height": 1080})
        tried = browser.offline(context)
        tab = context.new_page()
        tab.goto(base + "/")
        tab.wait_for_function(f"""() => {{ const gd = document.querySelector('{MAP}');
            const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
            return m && m.map && m.map.loaded(); }}""", timeout=WAIT_MS)
        yield SimpleNamespace(tab=tab)
        context.close()
        chromium.close()
        assert tried == [], f"requests tried to leave the machine: {tried}"


def test_soa020_updates_during_a_draw_wait_merged_and_the_last_one_wins(page):
    tab = page.tab
    tab.evaluate(BURST, UPDATES)
    tab.wait_for_function(f"""n => window.cockpitMapQueue.waiting() === null &&
        document.querySelector('{MAP}').layout.meta === n - 1""", arg=UPDATES,
        timeout=WAIT_MS)
    out = tab.evaluate("() => window.__burst")  # all handed over, the last one included
    assert out["whileDrawing"] == 0  # nothing handed to Dash while a draw was under way
    assert 1 <= out["handed"] < UPDATES / 2  # merged, not one draw per update
