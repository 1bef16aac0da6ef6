"""The map's context layer without a browser (run: pytest -k ctx).

Tiny inline files for loading; the shipped Shanghai coastline for its licence, extent
and the way it reaches the map (a style source by URL, under every trace).
"""

from __future__ import annotations

import geopandas as gpd
import orjson
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from dashboard.app import create_app
from dashboard.context import (
    CONTEXT_DIR,
    CONTEXT_URL,
    ContextError,
    city_context,
    load_context,
    shipped_context,
)
from dashboard.geography import load_geography
from dashboard.roads import city_geography
from dashboard.screen.mapfig import CONTEXT_LINES, CONTEXT_RIVERS, map_style
from dashboard.settings import Settings


def test_ctx001_the_shipped_coastline_is_wgs84_lines_around_the_city_with_its_licence():
    path = shipped_context("shanghai")
    raw = orjson.loads(path.read_bytes())
    assert {f["properties"]["kind"]: (f["properties"]["license"],
                                      f["properties"]["attribution"])
            for f in raw["features"]} == {
        "coastline": ("ODbL-1.0", "© OpenStreetMap contributors"),
        "rivers": ("LGPL-3.0-or-later", "Rivers: GSHHG (LGPL)")}
    licence = (CONTEXT_DIR / "LICENSE.md").read_text()
    assert "Open Database License" in licence and "© OpenStreetMap contributors" in licence
    assert "GNU Lesser General Public License" in licence and "GSHHG 2.3.6" in licence
    layer = load_context(path)
    assert layer.attribution == "© OpenStreetMap contributors; Rivers: GSHHG (LGPL)"
    lines = shapely.from_geojson([orjson.dumps(f["geometry"]) for f in
                                  orjson.loads(layer.geojson)["features"]])
    assert set(shapely.get_type_id(lines)) == {1}  # lines only
    x0, y0, x1, y1 = load_geography(None, "shanghai").frame.total_bounds
    bx0, by0, bx1, by1 = shapely.total_bounds(lines)
    assert x0 - 0.11 <= bx0 and by0 >= y0 - 0.11 and bx1 <= x1 + 0.11 and by1 <= y1 + 0.11
    assert len(path.read_bytes()) < 100_000  # small: clipped and simplified


def test_ctx007_the_rivers_hold_the_huangpu_from_the_centre_to_the_yangtze():
    """The Huangpu passes the Bund and reaches the Yangtze at Wusongkou (the coastline)."""
    raw = orjson.loads(shipped_context("shanghai").read_bytes())
    kinds = {f["properties"]["kind"]: shapely.geometry.shape(f["geometry"])
             for f in raw["features"]}
    rivers, coast = kinds["rivers"], kinds["coastline"]
    bund, wusongkou = Point(121.490, 31.240), Point(121.505, 31.385)
    assert rivers.distance(bund) < 0.015  # degrees: about 1.5 km
    assert rivers.distance(wusongkou) < 0.01 and coast.distance(wusongkou) < 0.02
    # served marked as rivers, which the map draws in water blue
    served = orjson.loads(load_context(shipped_context("shanghai")).geojson)["features"]
    marked = [shapely.geometry.shape(f["geometry"]) for f in served
              if f["properties"].get("kind") == "rivers"]
    assert marked and shapely.union_all(marked).distance(bund) < 0.015
    assert CONTEXT_RIVERS["filter"] == ["==", ["get", "kind"], "rivers"]
    assert CONTEXT_LINES["filter"] == ["!", CONTEXT_RIVERS["filter"]]


def test_ctx002_any_crs_lines_and_polygon_outlines_with_an_attribution(tmp_path):
    square = Polygon([(121.40, 31.20), (121.41, 31.20), (121.41, 31.21), (121.40, 31.21)])
    river = LineString([(121.42, 31.20), (121.45, 31.25)])
    frame = gpd.GeoDataFrame({"attribution": ["© Test Survey", None]},
                             geometry=[square, river], crs="EPSG:4326").to_crs("EPSG:32651")
    frame.to_file(tmp_path / "ctx.gpkg", driver="GPKG")
    layer = load_context(tmp_path / "ctx.gpkg")
    features = orjson.loads(layer.geojson)["features"]
    assert layer.lines == 2 and layer.attribution == "© Test Survey"
    assert [f["properties"] for f in features] == [{}, {}]
    # each source credited once, in the file's order; a `kind` goes with its lines
    frame["attribution"] = ["© Test Survey", "Rivers: Water Board"]
    frame["kind"] = [None, "rivers"]
    frame.to_file(tmp_path / "two.gpkg", driver="GPKG")
    two = load_context(tmp_path / "two.gpkg")
    assert two.attribution == "© Test Survey; Rivers: Water Board"
    assert [f["properties"] for f in orjson.loads(two.geojson)["features"]] == [
        {}, {"kind": "rivers"}]
    ring = shapely.geometry.shape(features[0]["geometry"])
    assert ring.geom_type == "LineString" and ring.is_ring  # the square's outline
    assert ring.coords[0] == pytest.approx((121.40, 31.20), abs=1e-5)
    assert shapely.geometry.shape(features[1]["geometry"]).coords[-1] == pytest.approx(
        (121.45, 31.25), abs=1e-5)


def test_ctx003_a_file_without_lines_stops_the_start_naming_it(tmp_path):
    gpd.GeoDataFrame(geometry=[Point(121.4, 31.2)], crs="EPSG:4326").to_file(
        tmp_path / "points.geojson", driver="GeoJSON")
    settings = Settings.load(env={"CITYBRAIN_CONTEXT": str(tmp_path / "points.geojson")})
    with pytest.raises(ContextError, match=r"points\.geojson: no lines or polygons"):
        city_geography(settings)
    with pytest.raises(ContextError, match=r"nowhere\.gpkg: file not found"):
        load_context(tmp_path / "nowhere.gpkg")


def test_ctx004_the_setting_demo_default_off_and_own_boundaries(tmp_path):
    assert city_context(Settings.load(env={})) is not None  # the demo city's coastline
    assert city_context(Settings.load(env={"CITYBRAIN_CONTEXT": "off"})) is None
    own = Settings.load(env={"CITYBRAIN_BOUNDARIES": str(tmp_path / "mine.gpkg")})
    assert city_context(own) is None  # a city's own boundaries: no demo coastline


def test_ctx005_drawn_from_the_style_under_the_traces_and_served_once_by_url(settings):
    layer = city_context(Settings.load(env={}))
    style = map_style("https://tiles.example/{z}/{x}/{y}.png", layer)
    assert style["sources"]["context"] == {"type": "geojson", "data": CONTEXT_URL,
                                           "attribution": "© OpenStreetMap contributors; "
                                                          "Rivers: GSHHG (LGPL)"}
    assert [lay["id"] for lay in style["layers"]] == ["bg", "tiles", CONTEXT_LINES["id"]]
    with_traces = [lay["id"] for lay in map_style(None, layer, traces=2)["layers"]]
    assert with_traces == ["bg", CONTEXT_LINES["id"], "trace-slot-0", CONTEXT_RIVERS["id"],
                           "trace-slot-1"]
    assert CONTEXT_RIVERS["id"] not in [lay["id"] for lay in map_style(None, None, 2)["layers"]]
    assert "context" not in map_style(None, None)["sources"]
    http = create_app(settings).server.test_client()
    answer = http.get(CONTEXT_URL)
    assert answer.status_code == 200 and answer.data == layer.geojson
    assert "max-age" in answer.headers["Cache-Control"]
    off = create_app(settings.replace(context="off")).server.test_client()
    assert off.get(CONTEXT_URL).status_code == 404
