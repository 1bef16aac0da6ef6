"""Geography: the shipped boundary files, the area hierarchy, locate() and file validation."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import shapely

from dashboard.geography import LEVELS, Area, BoundaryError, Geography, load_geography

DATA = Path(__file__).resolve().parent.parent / "dashboard" / "data"
SHARED_CODES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "admin_codes.csv"
XUHUI = "310104"
EQUAL_AREA = "EPSG:32651"  # UTM 51N: Shanghai is inside its zone; area error far below 0.1%


@pytest.fixture(scope="module")
def shanghai() -> Geography:
    return load_geography()


@pytest.fixture(scope="module")
def hangzhou() -> Geography:
    return load_geography(city="hangzhou")


@pytest.fixture(scope="module")
def codes() -> list[dict[str, str]]:
    with (DATA / "admin_codes.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def level_ids(geo: Geography, level: str) -> list[str]:
    return sorted(a.area_id for a in geo.areas.values() if a.level == level)


@pytest.fixture(scope="module")
def area_m2(shanghai) -> dict[str, float]:
    return shanghai.frame.geometry.to_crs(EQUAL_AREA).area.to_dict()


# ---------------------------------------------------------------- shipped files


@pytest.mark.parametrize(
    ("city", "root", "count"), [("shanghai", "310000", 16), ("hangzhou", "330100", 13)]
)
def test_geo001_shipped_district_codes(city, root, count, codes):
    geo = load_geography(city=city)
    expected = {r["area_id"]: r for r in codes if r["parent_id"] == root}
    assert len(expected) == count
    assert geo.root_id == root
    assert set(level_ids(geo, "district")) == set(expected)
    assert geo.children(root) == tuple(sorted(expected))
    for aid, row in expected.items():
        area = geo.areas[aid]
        assert (area.name, area.name_en, area.parent_id) == (row["name_zh"], row["name_en"], root)
    city_row = next(r for r in codes if r["area_id"] == root)
    assert geo.name(root) == city_row["name_zh"]
    assert geo.name(root, "en") == city_row["name_en"]
    assert geo.areas[root].parent_id is None
    assert geo.frame.crs.to_epsg() == 4326


def test_geo002_hangzhou_has_only_districts(hangzhou):
    assert {a.level for a in hangzhou.areas.values()} == {"city", "district"}
    assert len(hangzhou.areas) == 14


def test_geo003_codes_copy_matches_shared_reference():
    if not SHARED_CODES.is_file():
        pytest.skip("shared/reference is not beside the repository")
    assert (DATA / "admin_codes.csv").read_bytes() == SHARED_CODES.read_bytes()


def test_geo004_file_sizes_under_1mb():
    for name in ("shanghai.geojson", "hangzhou.geojson"):
        assert (DATA / name).stat().st_size < 1_000_000, name


def test_geo005_frame_columns_and_depth(shanghai):
    frame = shanghai.frame
    assert frame.index.name == "area_id"
    assert list(frame.columns) == ["name", "name_en", "level", "parent_id", "depth", "geometry"]
    assert (frame["depth"] == frame["level"].map(LEVELS.index)).all()
    assert shapely.is_valid(frame.geometry.values).all()


def test_geo006_neighbouring_districts_still_touch(shanghai):
    xuhui = shanghai.frame.geometry[XUHUI]
    for other in ("310101", "310105", "310106", "310112"):  # Huangpu Changning Jing'an Minhang
        geom = shanghai.frame.geometry[other]
        assert shapely.length(shapely.intersection(xuhui.boundary, geom.boundary)) > 0.001, other
        assert shapely.area(shapely.intersection(xuhui, geom)) < 1e-12, other
    districts = shanghai.frame.geometry[level_ids(shanghai, "district")].to_numpy()
    assert shapely.coverage_is_valid(districts)


# ------------------------------------------------------------ Xuhui hierarchy


def test_geo010_xuhui_hierarchy_counts(shanghai):
    streets = shanghai.children(XUHUI)
    assert streets == tuple(f"{XUHUI}-S{n:02d}" for n in range(1, 14))
    compounds = shanghai.descendants_at(XUHUI, "compound")
    assert compounds == tuple(f"{XUHUI}-R{n:04d}" for n in range(1, 958))
    communities = shanghai.descendants_at(XUHUI, "community")
    assert 250 <= len(communities) <= 350
    assert communities == tuple(f"{XUHUI}-C{n:04d}" for n in range(1, len(communities) + 1))
    assert all(len(shanghai.children(s)) >= 3 for s in streets)
    assert all(shanghai.children(c) for c in communities)
    for aid in (*streets, *communities, *compounds):
        area = shanghai.areas[aid]
        assert area.name_en.startswith("Demo ") and area.name.startswith("示例")


def test_geo011_compound_chains(shanghai):
    for aid in shanghai.descendants_at(XUHUI, "compound"):
        chain = shanghai.chain(aid)
        assert [shanghai.areas[a].level for a in chain] == [
            "compound",
            "community",
            "street",
            "district",
            "city",
        ]
        assert chain[-2:] == (XUHUI, "310000")
        assert all(re.fullmatch(rf"{XUHUI}-[SCR]\d+", a) for a in chain[:3])


def test_geo012_compounds_tile_xuhui(shanghai, area_m2):
    ids = list(shanghai.descendants_at(XUHUI, "compound"))
    geoms = shanghai.frame.geometry[ids].to_numpy()
    assert (shapely.get_type_id(geoms) == 3).all()  # single Polygons
    district = shanghai.frame.geometry[XUHUI]
    assert shapely.covered_by(geoms, district).all()
    total = sum(area_m2[a] for a in ids)
    assert total == pytest.approx(area_m2[XUHUI], rel=1e-3)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]])).sum()
    assert overlap < 1e-12  # square degrees: far below a square metre


@pytest.mark.parametrize(
    ("parent_level", "child_level"),
    [("street", "compound"), ("community", "compound"), ("district", "street")],
)
def test_geo013_coarser_areas_are_unions_of_finer(shanghai, area_m2, parent_level, child_level):
    for parent in shanghai.descendants_at(XUHUI, parent_level):
        kids = shanghai.descendants_at(parent, child_level)
        assert kids
        assert sum(area_m2[k] for k in kids) == pytest.approx(area_m2[parent], rel=1e-3)
    union = shapely.coverage_union_all(shanghai.frame.geometry[list(shanghai.children(XUHUI))])
    assert shapely.area(shapely.symmetric_difference(union, shanghai.frame.geometry[XUHUI])) < 1e-12


# ---------------------------------------------------------------------- locate


def test_geo020_locate_compound_points(shanghai):
    ids = shanghai.descendants_at(XUHUI, "compound")
    lon = np.array([shanghai.areas[a].lon for a in ids])
    lat = np.array([shanghai.areas[a].lat for a in ids])
    found = shanghai.locate(lon, lat)
    assert found.dtype == object
    assert list(found) == list(ids)


def test_geo021_locate_district_sea_and_far(shanghai):
    pudong = shanghai.areas["310115"]
    found = shanghai.locate([pudong.lon, 123.0, 0.0, np.nan], [pudong.lat, 30.5, 0.0, np.nan])
    assert list(found) == ["310115", None, None, None]


def test_geo022_locate_keeps_shape_and_accepts_empty(shanghai):
    pudong = shanghai.areas["310115"]
    grid = shanghai.locate(np.full((2, 3), pudong.lon), np.full((2, 3), pudong.lat))
    assert grid.shape == (2, 3) and (grid == "310115").all()
    assert shanghai.locate(np.array([]), np.array([])).shape == (0,)


# ----------------------------------------------------------- tiny custom files


def square(x: float, y: float, size: float = 1.0) -> list:
    return [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]


def feat(area_id, level, parent, coords, name=None, **extra) -> dict:
    props = {"area_id": area_id, "name": name or area_id, "level": level, "parent_id": parent}
    props.update(extra)
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": coords},
    }


def three_squares() -> list[dict]:
    """A 2x1 city and two districts; the districts leave the city's right third uncovered."""
    return [
        feat("c", "city", None, [[[0, 0], [3, 0], [3, 1], [0, 1], [0, 0]]], name_en="C"),
        feat("d1", "district", "c", square(0, 0)),
        feat("d2", "district", "c", square(1, 0)),
    ]


def write(tmp_path: Path, features: list[dict], name: str = "areas.geojson", crs=None) -> Path:
    doc: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_geo030_tiny_file_loads(tmp_path):
    geo = load_geography(write(tmp_path, three_squares()))
    assert geo.root_id == "c"
    assert geo.children("c") == ("d1", "d2")
    assert geo.chain("d2") == ("d2", "c")
    assert geo.descendants_at("c", "district") == ("d1", "d2")
    assert geo.descendants_at("d1", "district") == ("d1",)
    assert geo.areas["d1"].name_en == "d1"  # name_en defaults to the name
    assert geo.name("c", "en") == "C"
    assert geo.areas["d1"] == Area("d1", "d1", "d1", "district", "c", 1, 0.5, 0.5)
    with pytest.raises(ValueError, match="unknown level"):
        geo.descendants_at("c", "planet")


def test_geo031_locate_gap_border_and_tie(tmp_path):
    geo = load_geography(write(tmp_path, three_squares()))
    found = geo.locate([0.5, 1.5, 2.5, 1.0, 9.0], [0.5, 0.5, 0.5, 0.5, 9.0])
    # in d1, in d2, in the city but no district, on the d1/d2 border (lowest id), outside
    assert list(found) == ["d1", "d2", "c", "d1", None]


def test_geo032_geojson_output(tmp_path):
    feats = three_squares()
    feats[1]["geometry"]["coordinates"][0][1] = [1.0000004, 0.0]
    geo = load_geography(write(tmp_path, feats))
    fc = geo.geojson(["d1", "c"])
    assert fc["type"] == "FeatureCollection"
    assert [f["id"] for f in fc["features"]] == ["d1", "c"]
    first = fc["features"][0]
    assert first["properties"] == {
        "area_id": "d1",
        "name": "d1",
        "name_en": "d1",
        "level": "district",
        "parent_id": "c",
    }
    assert first["geometry"]["type"] == "Polygon"
    assert list(first["geometry"]["coordinates"][0][1]) == [1.0, 0.0]
    json.dumps(fc)  # plain, serialisable
    first["properties"]["name"] = "changed"
    assert geo.geojson(["d1"])["features"][0]["properties"]["name"] == "d1"


def test_geo033_geography_is_read_only(tmp_path):
    geo = load_geography(write(tmp_path, three_squares()))
    with pytest.raises(AttributeError):
        geo.root_id = "x"
    with pytest.raises(TypeError):
        geo.areas["x"] = geo.areas["c"]  # type: ignore[index]


def test_geo034_other_crs_is_reprojected(tmp_path):
    # Two nested squares in web mercator around Shanghai, the level numbers as strings
    x, y, s = 13_500_000.0, 3_660_000.0, 10_000.0
    feats = [
        feat("city", "city", None, square(x, y, 2 * s)),
        feat("d", "district", "city", square(x, y, s)),
    ]
    geo = load_geography(write(tmp_path, feats, crs="urn:ogc:def:crs:EPSG::3857"))
    assert geo.frame.crs.to_epsg() == 4326
    x0, y0, x1, y1 = geo.frame.total_bounds
    assert 121.2 < x0 < x1 < 121.5 and 31.1 < y0 < y1 < 31.5
    assert list(geo.locate([geo.areas["d"].lon], [geo.areas["d"].lat])) == ["d"]


def test_geo035_numeric_ids_and_file_without_crs(tmp_path):
    pytest.importorskip("pyogrio")
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {
            "area_id": [1, 2],
            "name": ["a", "b"],
            "level": ["city", "district"],
            "parent_id": [None, 1],
        },
        geometry=[shapely.box(0, 0, 2, 1), shapely.box(0, 0, 1, 1)],
    )
    path = tmp_path / "nocrs.gpkg"
    frame.to_file(path)
    geo = load_geography(path)
    assert geo.chain("2") == ("2", "1")
    frame.geometry = frame.geometry.scale(1000, 1000, origin=(0, 0))
    far = tmp_path / "far.gpkg"
    frame.to_file(far)
    with pytest.raises(BoundaryError, match="no CRS"):
        load_geography(far)


BOWTIE = [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]


def broken_cases() -> dict[str, tuple[list[dict], str]]:
    def edit(index, **props):
        feats = three_squares()
        feats[index]["properties"].update(props)
        return feats

    no_level = three_squares()
    for f in no_level:
        del f["properties"]["level"]
    bowtie = three_squares()
    bowtie[2]["geometry"]["coordinates"] = BOWTIE
    point = three_squares()
    point[2]["geometry"] = {"type": "Point", "coordinates": [1, 1]}
    empty = three_squares()
    empty[2]["geometry"] = None
    return {
        "missing_column": (no_level, r"missing column level"),
        "invalid_bowtie": (bowtie, r"area d2 has an invalid geometry: Self-intersection"),
        "duplicate_id": (edit(2, area_id="d1"), r"duplicate area_id d1"),
        "unknown_parent": (
            edit(2, parent_id="nowhere"),
            r"d2 has parent_id nowhere, which is not in",
        ),
        "no_root": (edit(0, parent_id="d1"), r"exactly one root.*found 0"),
        "two_roots": (edit(2, parent_id=None), r"exactly one root.*found 2: c, d2"),
        "cycle": (_cycle(), r"cycle: d1 -> d2 -> d1"),
        "unknown_level": (edit(1, level="planet"), r"d1 has unknown level 'planet'"),
        "not_finer": (
            edit(1, level="city"),
            r"d1 \(city\) is not finer than its parent c \(city\)",
        ),
        "point_geometry": (point, r"d2 is a Point"),
        "empty_geometry": (empty, r"d2 has an empty geometry"),
    }


def _cycle() -> list[dict]:
    feats = three_squares()
    feats[1]["properties"]["parent_id"] = "d2"
    feats[2]["properties"]["parent_id"] = "d1"
    return feats


@pytest.mark.parametrize("case", sorted(broken_cases()))
def test_geo040_broken_files_are_refused(tmp_path, case):
    features, message = broken_cases()[case]
    path = write(tmp_path, features)
    with pytest.raises(BoundaryError, match=message) as info:
        load_geography(path)
    assert str(path) in str(info.value)


def test_geo041_not_a_geo_file(tmp_path):
    path = tmp_path / "notes.geojson"
    path.write_text("this is not geography\n", encoding="utf-8")
    with pytest.raises(BoundaryError, match="not a readable geographic file") as info:
        load_geography(path)
    assert str(path) in str(info.value)
    table = tmp_path / "table.csv"
    table.write_text("area_id,name,level,parent_id\nc,C,city,\n", encoding="utf-8")
    with pytest.raises(BoundaryError, match="no geometry column"):
        load_geography(table)


def test_geo042_missing_file_and_unknown_city(tmp_path):
    path = tmp_path / "absent.geojson"
    with pytest.raises(BoundaryError, match="file not found") as info:
        load_geography(path)
    assert str(path) in str(info.value)
    with pytest.raises(BoundaryError, match="shipped: hangzhou, shanghai"):
        load_geography(city="atlantis")
    with pytest.raises(BoundaryError, match="unknown demo city"):
        load_geography(city="../etc/passwd")


def test_geo043_an_areas_subtree_is_every_area_whose_chain_holds_it(shanghai):
    """`subtree` (one set lookup for "inside": lists, scopes, the trend) equals the
    areas whose chain up to the city holds the area, for every area."""
    for area_id in shanghai.areas:
        expected = {a for a in shanghai.areas if area_id in shanghai.chain(a)}
        assert shanghai.subtree(area_id) == expected, area_id
    assert len(shanghai.subtree(shanghai.root_id)) == len(shanghai.areas)
