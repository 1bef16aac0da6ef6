"""The road network: loading any CRS, bad files at start, roads drawn by level (pytest -k rds).

Tiny inline networks (two or three lines) written with GeoPandas; the demo's shipped
synthetic network checked against the demo feed's segments.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import geopandas as gpd
import orjson
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from dashboard.demo.places import districts
from dashboard.demo.simulator import Simulator, demo_segment_ids
from dashboard.geography import Geography
from dashboard.roads import (
    DEFAULT_WIDTH,
    ROAD_WIDTHS,
    RoadsError,
    city_geography,
    load_roads,
    shipped_roads,
)
from dashboard.settings import DEFAULT_RISK_MODEL, Settings
from dashboard.state.view import RawState, RiskModel, Segment, build_view
from layers import traffic
from layers.base import ROADS_URL

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=ZONE)
NOW_MS = int(NOW.timestamp() * 1000)


def network_file(tmp_path, rows, crs="EPSG:4326", name="roads.gpkg", **columns):
    frame = gpd.GeoDataFrame({"segment_id": [r[0] for r in rows], **columns},
                             geometry=[r[1] for r in rows], crs=crs)
    path = tmp_path / name
    frame.to_file(path)
    return path


def test_rds001_any_crs_is_reprojected_and_served_as_ribbons(tmp_path):
    wgs = [("A", LineString([(121.40, 31.20), (121.42, 31.20)])),
           ("B", LineString([(121.43, 31.21), (121.43, 31.23), (121.44, 31.24)]))]
    metric = gpd.GeoSeries([g for _, g in wgs], crs="EPSG:4326").to_crs("EPSG:32651")
    path = network_file(tmp_path, list(zip(["A", "B"], metric, strict=True)), crs="EPSG:32651",
                        road_class=["Primary", None])
    roads = load_roads(path)
    assert roads.midpoints["A"] == pytest.approx((121.41, 31.20), abs=1e-5)
    assert roads.classes == {"A": "primary", "B": ""}
    assert roads.width("A") == ROAD_WIDTHS["primary"] and roads.width("B") == DEFAULT_WIDTH
    assert not roads.synthetic
    collection = orjson.loads(roads.geojson)
    assert [f["id"] for f in collection["features"]] == ["A", "B"]
    for (_, line), feature in zip(wgs, collection["features"], strict=True):
        ribbon = shapely.geometry.shape(feature["geometry"])
        assert ribbon.geom_type == "Polygon" and ribbon.is_valid
        assert ribbon.contains(line.interpolate(0.5, normalized=True))  # around its line,
        assert ribbon.area < line.length * 0.0003  # and thin (about 12 m wide)


@pytest.mark.parametrize(("rows", "columns", "problem"), [
    ([("A", Point(121.4, 31.2))], {}, "segment A is a Point"),
    ([("A", LineString([(121.4, 31.2), (121.5, 31.2)])),
      ("A", LineString([(121.4, 31.3), (121.5, 31.3)]))], {}, "duplicate segment_id A"),
    ([("A", box(121.4, 31.2, 121.5, 31.3))], {}, "not a LineString"),
])
def test_rds002_a_bad_network_fails_at_start_naming_the_file(tmp_path, rows, columns, problem):
    path = network_file(tmp_path, rows, **columns)
    with pytest.raises(RoadsError, match=problem) as caught:
        load_roads(path)
    assert str(path) in str(caught.value)
    settings = Settings.load(env={"CITYBRAIN_ROADS": str(path)})
    with pytest.raises(RoadsError, match=str(path)):
        city_geography(settings)


def test_rds003_missing_column_or_file(tmp_path):
    frame = gpd.GeoDataFrame({"id": ["A"]}, geometry=[LineString([(0, 0), (1, 1)])],
                             crs="EPSG:4326")
    frame.to_file(tmp_path / "no_id.geojson", driver="GeoJSON")
    with pytest.raises(RoadsError, match=r"no_id\.geojson: missing column segment_id"):
        load_roads(tmp_path / "no_id.geojson")
    with pytest.raises(RoadsError, match=r"nowhere\.gpkg: file not found"):
        load_roads(tmp_path / "nowhere.gpkg")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Geography:
    """Two districts side by side and a network with one road in the east one."""
    from dashboard.geography import load_geography

    folder = tmp_path_factory.mktemp("tiny-roads")
    rows = [("900000", "city", None, box(0, 0, 2, 1)),
            ("900001", "district", "900000", box(0, 0, 1, 1)),
            ("900002", "district", "900000", box(1, 0, 2, 1))]
    gpd.GeoDataFrame({"area_id": [r[0] for r in rows], "name": [r[0] for r in rows],
                      "level": [r[1] for r in rows], "parent_id": [r[2] for r in rows]},
                     geometry=[r[3] for r in rows], crs="EPSG:4326").to_file(
        folder / "city.geojson", driver="GeoJSON")
    path = network_file(folder, [("R1", LineString([(0.2, 0.5), (0.8, 0.5)]))],
                        road_class=["motorway"])
    return load_geography(folder / "city.geojson").with_roads(load_roads(path))


def test_rds004_segments_on_the_network_are_roads_the_others_dots(tiny):
    raw = RawState(records={"traffic": {
        "R1": Segment("R1", "900001", 0.5, 0.5, 20.0, 60.0, NOW_MS),  # index 3: severe
        "S2": Segment("S2", "900002", 1.5, 0.5, 55.0, 60.0, NOW_MS)}},  # smooth
        stats={"last_applied_ms": str(NOW_MS)})
    view = build_view(raw, tiny, RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85)), NOW, 30.0)
    _, roads, dots = traffic.traces(view, "900000", "en")
    assert roads["uid"] == "traffic-roads" and roads["geojson"] == ROADS_URL
    assert roads["locations"] == ["R1"] and roads["z"] == [4]
    assert roads["marker"]["line"]["color"] == [traffic.LEVEL_COLORS[4]]
    assert roads["marker"]["line"]["width"] == [ROAD_WIDTHS["motorway"]]
    assert dots["lon"] == [1.5] and dots["customdata"][0][0] == "S2"
    assert "synthetic" not in roads["hovertemplate"]
    _, roads, dots = traffic.traces(view, "900002", "en")  # drilled into the west district
    assert roads["locations"] == [] and len(dots["lon"]) == 1
    # Without a network every segment is a dot and there is no roads trace.
    plain = build_view(raw, tiny.with_roads(None), view.model, NOW, 30.0)
    assert [t["uid"] for t in traffic.traces(plain, "900000", "en")] == [
        "traffic-fill", "traffic-segments"]


def test_rds005_the_demo_ships_a_synthetic_network_for_its_segments(geography, tmp_path):
    path = shipped_roads("shanghai")
    collection = json.loads(path.read_text(encoding="utf-8"))
    assert "synthetic" in collection["name"] and "NOT real roads" in collection["description"]
    assert all(f["properties"]["synthetic"] is True for f in collection["features"])
    roads = city_geography(Settings.load(env={})).roads
    assert roads is not None and roads.synthetic
    wanted = {sid for d in districts(geography) for sid in demo_segment_ids(d)}
    assert set(roads.classes) == wanted  # every demo segment has its road, no other
    # The demo feed's segments sit on their roads, inside their own districts.
    on_roads = city_geography(Settings.load(env={}))
    sim = Simulator(None, "s", on_roads, seed=3)
    for segment in sim.segments[:40]:
        assert (segment.point.wgs_lon, segment.point.wgs_lat) == roads.midpoints[
            segment.segment_id]
        area = on_roads.locate(segment.point.wgs_lon, segment.point.wgs_lat).item()
        assert segment.district_id in geography.chain(area)
    own = tmp_path / "city.geojson"  # a city's own boundaries: no demo roads
    geography.frame.loc[[geography.root_id]].reset_index().to_file(own, driver="GeoJSON")
    assert city_geography(Settings.load(env={"CITYBRAIN_BOUNDARIES": str(own)})).roads is None
