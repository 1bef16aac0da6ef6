"""Map layers: one parametrized test over the registry, plus unit tests (run: pytest -k lay).

Pure: tiny inline geometry (three squares in a city of two districts), no
Redis, no browser.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import geopandas as gpd
import orjson
import pytest
from shapely.geometry import box

from dashboard.geography import Geography, load_geography
from dashboard.i18n import LANGS
from dashboard.kinds.incident import OpenIncident
from dashboard.kinds.sensor import SensorReading
from dashboard.settings import DEFAULT_RISK_MODEL
from dashboard.state.view import RawState, RiskModel, RiskReading, Segment, build_view
from layers import LAYERS, risk
from layers.base import Layer, center_zoom, focus, geojson_url, stepped_scale, text
from layers.incidents import age_text

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=ZONE)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Geography:
    """Three squares: two compounds in the east district, the west district alone."""
    rows = [
        ("900000", "小城", "Small City", "city", None, box(0, 0, 3, 1)),
        ("900001", "东区", "East", "district", "900000", box(0, 0, 2, 1)),
        ("900002", "西区", "West", "district", "900000", box(2, 0, 3, 1)),
        ("900001-S01", "街道", "Street", "street", "900001", box(0, 0, 2, 1)),
        ("900001-R0001", "甲小区", "Compound A", "compound", "900001-S01", box(0, 0, 1, 1)),
        ("900001-R0002", "乙小区", "Compound B", "compound", "900001-S01", box(1, 0, 2, 1)),
    ]
    frame = gpd.GeoDataFrame(
        {"area_id": [r[0] for r in rows], "name": [r[1] for r in rows],
         "name_en": [r[2] for r in rows], "level": [r[3] for r in rows],
         "parent_id": [r[4] for r in rows]},
        geometry=[r[5] for r in rows], crs="EPSG:4326")
    path = tmp_path_factory.mktemp("tiny") / "tiny.geojson"
    frame.to_file(path, driver="GeoJSON")
    return load_geography(path)


def view_of(geography: Geography, **raw) -> object:
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    return build_view(RawState(**raw), geography, model, NOW, 30.0)


def sample_raw() -> dict:
    return {
        "open_incidents": {i: OpenIncident.from_stored(i, d) for i, d in {
            "I1": {"area": "900001-R0001", "lon": 0.5, "lat": 0.5, "cat": "garbage",
                   "src": "hotline", "sev": 4, "st": "reported", "sts": NOW_MS,
                   "start": NOW_MS - 90 * 60_000, "due": NOW_MS - 1, "title": "<b>x</b>",
                   "dept": ""},
            "I2": {"area": "900002", "lon": 2.5, "lat": 0.5, "cat": "mystery", "src": "",
                   "sev": 1, "st": "dispatched", "sts": NOW_MS, "start": NOW_MS - 60_000,
                   "due": NOW_MS + 60_000, "title": "", "dept": ""},
        }.items()},
        "records": {
            "traffic": {"S1": Segment("S1", "900001-R0002", 1.5, 0.5, 20.0, 60.0, NOW_MS),
                        "S2": Segment("S2", "900002", 2.5, 0.2, 60.0, 60.0, NOW_MS)},
            "risk": {f"{a}|{i}": RiskReading(a, i, v, NOW_MS) for a, i, v in (
                ("900001-R0001", "fire_hazards", 5.0), ("900001-R0002", "flood_points", 3.0),
                ("900001-R0002", "fever_reports", 10.0))},
            "sensor": {"D1": SensorReading("D1", "smoke", 1.0, "", "900001-R0001", 0.4, 0.4,
                                           NOW_MS, alarm=True),
                       "D2": SensorReading("D2", "pm25", 20.0, "µg/m³", "900002", 2.4, 0.4,
                                           NOW_MS)},
        },
        "stats": {"last_applied_ms": str(NOW_MS)},
    }


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.id for layer in LAYERS])
@pytest.mark.parametrize("area_id", ["900000", "900001", "900001-R0001"])
@pytest.mark.parametrize("lang", LANGS)
def test_lay001_every_layer_draws_json_traces_and_a_legend(layer: Layer, area_id, lang, city):
    assert isinstance(layer, Layer) and layer.id and layer.title("zh-CN") and layer.title("en")
    for raw in ({}, sample_raw()):
        traces = layer.traces(view_of(city, **raw), area_id, lang)
        assert traces and all(isinstance(t, dict) and t["type"] in {
            "choroplethmap", "scattermap"} for t in traces)
        uids = [t["uid"] for t in traces]
        assert len(set(uids)) == len(uids) and all(u.startswith(layer.id + "-") for u in uids)
        for trace in traces:
            orjson.dumps(trace)  # plain JSON: no numpy arrays (they broke Patch in the browser)
            if trace["type"] == "choroplethmap":  # geometry only by URL, never inline
                assert isinstance(trace["geojson"], str) and trace["geojson"].startswith("/geo/")
                assert len(trace["z"]) == len(trace["locations"])
            else:
                assert len(trace["lon"]) == len(trace["lat"])
    legend = layer.legend(lang)
    assert legend.title and legend.items
    assert all(colour.startswith("#") and label for colour, label in legend.items)


def test_lay002_layer_ids_are_unique():
    ids = [layer.id for layer in LAYERS]
    assert ids and len(ids) == len(set(ids))


def test_lay003_focus_city_shows_districts(city):
    f = focus(city, "900000")
    assert f.fill_ids == ("900001", "900002") and f.fill_level == "district"
    assert f.outline_level is None and f.bounds == (0.0, 0.0, 3.0, 1.0)


def test_lay004_focus_inside_a_district_shows_its_finest_areas(city):
    for area in ("900001", "900001-S01", "900001-R0002"):
        f = focus(city, area)
        assert f.scope == "900001" and f.fill_level == "compound"
        assert f.fill_ids == ("900001-R0001", "900001-R0002")
        assert f.outline_ids == ("900001-S01",)
    assert focus(city, "900002").fill_ids == ("900002",)  # no finer areas: itself


def test_lay005_risk_colours_by_warning_level(city):
    view = view_of(city, **sample_raw())
    fill = risk.traces(view, "900001", "en")[0]
    # A: fire 5/5 -> 25 points (blue); B: flood 3/3 (20) + fever 10/10 (20) = 40 (blue)
    assert fill["locations"] == ["900001-R0001", "900001-R0002"]
    assert fill["z"] == [1, 1]
    assert fill["customdata"][0] == ["Compound A", "25.0", "Blue (IV)"]
    assert risk.area_risk(view, "900002") == (None, "normal")
    assert risk.area_risk(view, "900001")[0] == view.summary("900001")["risk"]["score"]


def test_lay006_incidents_by_severity_with_overdue_ring_and_escaped_text(city):
    from layers import incidents

    rings, points, counted = incidents.traces(view_of(city, **sample_raw()), "900000", "zh-CN")
    assert counted["lon"] == [] and counted["text"] == []  # few incidents: single points
    assert points["marker"]["color"] == [3, 0]  # severity 4 then 1, as codes
    assert rings["lon"] == [0.5]  # only the overdue one
    hover = points["customdata"][0]
    assert hover[0] == "垃圾" and hover[1] == "12345热线" and hover[3] == "1h30"
    assert hover[4] == "&lt;b&gt;x&lt;/b&gt;"  # Plotly hover labels read some tags
    assert points["customdata"][1][0] == "mystery"  # unknown category shown as its code


def test_lay007_traffic_levels_per_area_and_segment(city):
    from layers import traffic

    fill, segments = traffic.traces(view_of(city, **sample_raw()), "900000", "en")
    assert fill["locations"] == ["900001", "900002"]
    assert fill["z"] == [4, 1]  # index 3.0 severe; 1.0 smooth
    assert segments["marker"]["color"] == [4, 1]
    assert segments["customdata"][0][3] == "Severe"


def test_lay008_helpers():
    assert stepped_scale(["#a", "#b"]) == [[0, "#a"], [0.5, "#a"], [0.5, "#b"], [1, "#b"]]
    assert geojson_url("310104", "compound") == "/geo/310104/compound.json"
    assert text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert text(None) == ""
    assert age_text(17, "en") == "17 min" and age_text(125, "zh-CN") == "2h05"
    centre, zoom = center_zoom((121.0, 31.0, 122.0, 32.0))
    assert centre == {"lon": 121.5, "lat": 31.5} and 8 < zoom < 10


def many_incidents(where: list[tuple[str, float, float, int]]) -> dict:
    """Open incidents (area, lon, lat, how many); every third one overdue, severities 1-4."""
    out, k = {}, 0
    for area, lon, lat, n in where:
        for j in range(n):
            k += 1
            out[f"M{k}"] = OpenIncident(f"M{k}", area, lon + (j % 37) * 0.0001,
                                        lat + (j % 23) * 0.0001, "garbage", "grid",
                                        1 + k % 4, "reported", NOW_MS, NOW_MS - 60_000,
                                        NOW_MS - 1 if k % 3 == 0 else NOW_MS + 60_000,
                                        f"#{k}", "")
    return out


def test_lay009_city_scale_incidents_are_counted_per_child_area(city):
    from layers import incidents

    assert incidents.POINTS_MAX < 700
    opened = many_incidents([("900001-R0001", 0.2, 0.2, 400), ("900002", 2.2, 0.2, 300)])
    view = view_of(city, open_incidents=opened)
    rings, points, counted = incidents.traces(view, "900000", "en")
    assert points["lon"] == [] and points["customdata"] == []  # no single points at all
    assert counted["text"] == ["400", "300"]  # one bubble per district, its count as label
    assert [c[0] for c in counted["customdata"]] == ["drill:900001", "drill:900002"]
    assert [c[2:] for c in counted["customdata"]] == [
        [400, view.summary("900001")["incidents"]["overdue"]],
        [300, view.summary("900002")["incidents"]["overdue"]]]
    assert (counted["lon"][0], counted["lat"][0]) == (city.areas["900001"].lon,
                                                      city.areas["900001"].lat)
    assert counted["marker"]["color"] == [3, 3]  # the most severe incident of each: 4
    assert len(rings["lon"]) == 2  # both have overdue ones: ringed
    assert counted["marker"]["size"][0] > counted["marker"]["size"][1]
    # drilled down into the east district: 400 are few enough to be single points
    rings, points, counted = incidents.traces(view, "900001", "en")
    assert len(points["lon"]) == 400 and counted["lon"] == []
    assert len(rings["lon"]) == sum(1 for i in opened.values()
                                    if i.area != "900002" and i.overdue(NOW_MS))


def test_lay010_an_area_without_children_counts_by_grid_cell(city):
    from layers import incidents

    opened = many_incidents([("900002", 2.05, 0.05, 350), ("900002", 2.85, 0.85, 350)])
    view = view_of(city, open_incidents=opened)
    _, points, counted = incidents.traces(view, "900002", "en")
    assert points["lon"] == [] and sorted(counted["text"]) == ["350", "350"]
    assert all(c[0] == "" for c in counted["customdata"])  # a cell is no area to drill into
    assert abs(counted["lon"][0] - (2.05 + 0.0018)) < 0.001  # at the mean of its points


def test_lay012_grid_cells_counted_by_place_equal_a_plain_count(city):
    """An area whose incidents lie in several places (the district itself and its
    compounds) is counted by grid cell from each place's cells, kept while the place
    stays the same: after a place changes and the clock moves, every cell's count,
    overdue count, top severity and mean point equal a plain count of all incidents."""
    import random
    from datetime import timedelta

    from layers import incidents
    from layers.aggregate import by_grid

    rng = random.Random(13)
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    bounds = focus(city, "900001").bounds

    def incident(k: int, area: str, x0: float) -> OpenIncident:
        return OpenIncident(f"G{k}", area, x0 + rng.random(), rng.random(), "garbage", "grid",
                            rng.randint(1, 4), "reported", NOW_MS, NOW_MS - 3_600_000,
                            NOW_MS + rng.randint(-600, 600) * 1000, "", "")

    by_place = {"900001": {}, "900001-R0001": {}, "900001-R0002": {}}
    for k in range(900):
        area = rng.choice(sorted(by_place))
        item = incident(k, area, 1.0 if area == "900001-R0002" else 0.0)
        by_place[area][item.incident_id] = item

    def plain(now_ms: int) -> dict:
        size = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 12
        cells: dict = {}
        for item in (i for p in by_place.values() for i in p.values()):
            cell = (min(int((item.lon - bounds[0]) / size), 11),
                    min(int((item.lat - bounds[1]) / size), 11))
            cells.setdefault(cell, []).append(item)
        return {f"900001#{c[0]},{c[1]}": (
            len(items), sum(i.due <= now_ms for i in items), max(i.severity for i in items),
            sum(i.lon for i in items) / len(items), sum(i.lat for i in items) / len(items))
            for c, items in cells.items()}

    def check(view) -> None:  # type: ignore[no-untyped-def]
        expected = plain(view.now_ms)
        groups = by_grid("900001", bounds, view.places_inside("900001"), view.now_ms)
        assert sorted(g.key for g in groups) == sorted(expected)
        for g in groups:
            n, late, severity, lon, lat = expected[g.key]
            assert (g.count, g.overdue, g.max_severity) == (n, late, severity), g.key
            assert abs(g.lon - lon) < 2e-5 and abs(g.lat - lat) < 2e-5, g.key

    first = build_view(RawState(open_incidents={}, by_place=by_place), city, model, NOW, 30)
    check(first)
    by_place = dict(by_place)
    changed = dict(by_place["900001-R0001"])
    for key in sorted(changed)[:40]:
        del changed[key]
    for k in range(1000, 1060):
        item = incident(k, "900001-R0001", 0.0)
        changed[item.incident_id] = item
    by_place["900001-R0001"] = changed
    later = build_view(RawState(open_incidents={}, by_place=by_place), city, model,
                       NOW + timedelta(minutes=4), 30, known_places=first.known_places)
    check(later)
    kept = later.known_places["900001-R0002"][1]
    assert kept is first.known_places["900001-R0002"][1] and kept.derived  # cells reused
    # the layer counts this way: 900001's compounds do not hold the incidents placed in it
    _, points, counted = incidents.traces(later, "900001", "en")
    assert points["lon"] == [] and sum(int(t) for t in counted["text"]) == sum(
        len(p) for p in by_place.values())


def test_lay011_a_click_on_a_counted_bubble_selects_its_area(city):
    from dashboard.screen.callbacks import clicked_area

    assert clicked_area([{"customdata": ["drill:900002", "West", 3, 0]}], city) == "900002"
    assert clicked_area([{"location": "900001"}], city) == "900001"
    assert clicked_area([{"customdata": ["drill:nowhere", "x", 1, 0]}], city) is None
    assert clicked_area([{"customdata": ["900002", "garbage"]}], city) is None  # no marker
