"""Any resolution without a browser: the map's fit, Plotly's text size, KPI numbers (-k res)."""

from __future__ import annotations

import math

import pytest

from dashboard.app import create_app
from dashboard.screen import callbacks, panels
from dashboard.screen.frame import frame_for
from dashboard.screen.mapfig import figure, refit
from dashboard.screen.viewport import Box, fit
from layers.base import focus
from tests.test_screen_frame import request

XUHUI = "310104"


def project(lon: float, lat: float, center: dict[str, float], zoom: float,
            box: Box) -> tuple[float, float]:
    """Where MapLibre draws a point in a map of the box's size (Web Mercator, 512 px tiles)."""
    world = 512 * 2 ** zoom

    def xy(lo: float, la: float) -> tuple[float, float]:
        phi = math.radians(la)
        return ((lo + 180) / 360 * world,
                (1 - math.log(math.tan(math.pi / 4 + phi / 2)) / math.pi) / 2 * world)

    cx, cy = xy(center["lon"], center["lat"])
    x, y = xy(lon, lat)
    return x - cx + box.width / 2, y - cy + box.height / 2


@pytest.mark.parametrize("box", [
    Box(711, 598, 40, 11.4), Box(1000, 840), Box(2000, 1700, 80, 32), Box(4000, 3400, 160, 64),
    Box(6500, 1400, 50, 24), Box(358, 520, 110, 16), Box(1060, 1100, 45, 16)],
    ids=lambda b: f"{b.width:g}x{b.height:g}")
@pytest.mark.parametrize("area", ["310000", XUHUI, "310104-R0100"])
def test_res001_the_area_fills_the_free_part_of_any_box(geography, box, area):
    """Inside the map below the time control, and at least 60 % of its width or height."""
    west, south, east, north = focus(geography, area).bounds
    center, zoom = fit((west, south, east, north), box)
    left, top = project(west, north, center, zoom, box)
    right, bottom = project(east, south, center, zoom, box)
    assert left >= -1 and right <= box.width + 1
    assert top >= box.top - 1 and bottom <= box.height + 1
    share = max((right - left) / box.width, (bottom - top) / (box.height - box.top))
    assert share >= 0.6


def test_res002_the_box_from_the_browser_is_clamped_and_checked():
    assert Box.parse(None) == Box() == Box.parse("junk") == Box.parse([1, 2])
    assert Box.parse({"width": 1200, "height": 700, "top": 30, "rem": 12}) == Box(1200, 700, 30, 12)
    wild = Box.parse({"width": 1e9, "height": -5, "top": float("nan"), "rem": True})
    assert wild == Box(20000.0, 50.0, 0.0, 16.0)
    assert Box.parse({"width": "800", "height": None}) == Box()
    # A control covering more than half the map: the fit uses the whole map.
    assert Box.parse({"width": 400, "height": 300, "top": 200}).top == 0
    assert Box(rem=32).scale == 2


def test_res003_figures_size_their_text_for_the_box(settings, client, geography):
    app = create_app(settings)
    with request(app, "/?area=310104"):
        frame = frame_for(app.server.extensions["citybrain"].cache.view(), XUHUI, "zh-CN")
        small = figure(frame, geography, ["risk"], box=Box(700, 600, 0, 11.4))
        wall = figure(frame, geography, ["risk"], box=Box(2000, 1700, 0, 32))
        names = next(i for i, t in enumerate(frame.traces) if t["uid"] == "risk-names")
        assert frame.traces[names]["textfont"]["size"] == 14  # the shared frame is untouched
        assert small["data"][names]["textfont"]["size"] == pytest.approx(14 * 11.4 / 16, abs=0.1)
        assert wall["data"][names]["textfont"]["size"] == 28
        assert wall["layout"]["hoverlabel"]["font"]["size"] == 32
        assert wall["layout"]["map"]["zoom"] > small["layout"]["map"]["zoom"] + 1.4
        trend = panels.trend_figure(frame, Box(rem=32))["layout"]
        assert trend["font"]["size"] == 28 and trend["margin"]["l"] == 88
        moved = refit(frame, geography, Box(2000, 1700, 0, 32)).to_plotly_json()
        ops = {(tuple(op["location"]), repr(op["params"].get("value")))
               for op in moved["operations"]}
        assert (("layout", "map", "zoom"), repr(wall["layout"]["map"]["zoom"])) in ops
        assert (("data", names, "textfont"), repr(wall["data"][names]["textfont"])) in ops
        assert all(op["location"][0] == "layout" or op["location"][2] == "textfont"
                   for op in moved["operations"])  # no data but the text size


def test_res004_a_reported_box_refits_the_map_of_the_url_area(settings, client, geography):
    app = create_app(settings)
    with request(app, "/?area=310104"):
        box = {"width": 900, "height": 500, "top": 40, "rem": 12}
        map_patch, trend_patch = callbacks.fit_to_box(box, "?area=310104", None)
        center, zoom = fit(focus(geography, XUHUI).bounds, Box.parse(box))
        ops = {tuple(op["location"]): op["params"].get("value")
               for op in map_patch.to_plotly_json()["operations"]}
        assert ops[("layout", "map", "center")] == center
        assert ops[("layout", "map", "zoom")] == zoom
        trend_ops = {tuple(op["location"]): op["params"].get("value")
                     for op in trend_patch.to_plotly_json()["operations"]}
        assert trend_ops[("layout", "font", "size")] == 10.5


@pytest.mark.parametrize(("value", "zh", "en"), [
    (None, "–", "–"), (0, "0", "0"), (47_748, "47,748", "47,748"), (99_999, "99,999", "99,999"),
    (100_000, "10万", "100k"), (123_456, "12.3万", "123k"), (999_600, "100万", "1M"),
    (1_234_567, "123万", "1.2M"), (99_996_000, "1亿", "100M"), (123_456_789, "1.2亿", "123M"),
])
def test_res005_kpi_numbers_abbreviate_in_the_language(value, zh, en):
    assert panels.compact(value, "zh-CN") == zh
    assert panels.compact(value, "en") == en


def test_res006_no_kpi_number_is_longer_than_the_tile_is_made_for():
    """The CSS sizes a tile for six characters ("99,999"); no count gives more."""
    for digits in range(1, 12):
        for lead in (1, 5, 9):
            value = int(str(lead) + "9" * (digits - 1))
            for lang in ("zh-CN", "en"):
                assert len(panels.compact(value, lang)) <= 6, (value, lang)
