"""Importing boundaries: formats, datums, repairs, parents, reports, simplifying (-k bnd)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from dashboard import cli
from dashboard.boundaries import ImportOptions, import_file, read_areas
from dashboard.geography import BoundaryError, load_geography
from dashboard.pipeline.coords import wgs84_to_gcj02

PARENT = "310104-R0001"  # a compound of the demo city; the cells below lie inside it
D = 0.0003  # about 30 m


@pytest.fixture(scope="module")
def corner(geography) -> tuple[float, float]:
    point = geography.frame.geometry.loc[PARENT].point_on_surface()
    return point.x - D, point.y - D / 2


def cells(corner, ids=("G1", "G2"), shift: float = 0.0, crs="EPSG:4326") -> gpd.GeoDataFrame:
    """Side-by-side squares of D inside the compound (`shift` moves the second one left)."""
    x, y = corner
    boxes = [shapely.box(x + i * D - (shift if i else 0), y, x + (i + 1) * D - (shift if i else 0),
                         y + D) for i in range(len(ids))]
    return gpd.GeoDataFrame({"code": list(ids), "mc": [f"网格{i}" for i in ids],
                             "up": PARENT}, geometry=boxes, crs=crs)


def options(**changes) -> ImportOptions:
    return ImportOptions(**{"id_field": "code", "name_field": "mc", "level": "grid", **changes})


def test_bnd001_geojson_by_containment_merged_into_the_hierarchy(tmp_path, geography, corner):
    source = tmp_path / "grid.geojson"
    cells(corner).to_file(source, driver="GeoJSON")
    out = tmp_path / "city.geojson"
    report, loaded = import_file(source, options(), geography, out)
    assert loaded.areas["G1"].parent_id == PARENT and loaded.areas["G2"].level == "grid"
    assert loaded.areas["G1"].name == "网格G1"
    assert len(loaded.areas) == len(geography.areas) + 2
    assert loaded.children(PARENT) == ("G1", "G2")
    assert load_geography(out).locate(corner[0] + D / 2, corner[1] + D / 2) == "G1"
    assert report.overlaps == [] and report.outside == []
    ((parent, gap),) = report.gaps  # the compound is not covered by two cells
    utm = geography.frame.geometry.loc[[PARENT]].estimate_utm_crs()
    compound_m2 = geography.frame.geometry.loc[[PARENT]].to_crs(utm).area.iloc[0]
    cells_m2 = cells(corner).to_crs(utm).area.sum()
    assert parent == PARENT and gap == pytest.approx(compound_m2 - cells_m2, rel=1e-3)
    assert f"gap: {gap:,.0f} m² of {PARENT}" in "\n".join(report.lines())


def test_bnd002_shapefile_with_gbk_cpg_and_parent_field(tmp_path, geography, corner):
    source = tmp_path / "grid.shp"
    cells(corner).to_file(source, encoding="GBK")
    assert source.with_suffix(".cpg").read_text().upper().startswith(("GBK", "CP936"))
    assert "网格G1".encode("gbk") in source.with_suffix(".dbf").read_bytes()  # not UTF-8
    imported, _ = read_areas(source, options(parent_field="up"), geography)
    assert list(imported["name"]) == ["网格G1", "网格G2"]
    assert list(imported["parent_id"]) == [PARENT, PARENT]


def test_bnd003_geopackage_layer_in_a_projected_crs(tmp_path, geography, corner):
    source = tmp_path / "city.gpkg"
    original = cells(corner)
    original.to_crs("EPSG:4527").to_file(source, layer="grid", driver="GPKG")  # CGCS2000 GK
    original.iloc[:1].to_file(source, layer="other", driver="GPKG")
    imported, _ = read_areas(source, options(layer="grid"), geography)
    assert list(imported["area_id"]) == ["G1", "G2"]
    for mine, theirs in zip(imported.geometry, original.geometry, strict=True):
        assert shapely.equals_exact(mine.normalize(), theirs.normalize(), tolerance=1e-7)


def test_bnd004_gcj02_sources_are_converted(tmp_path, geography, corner):
    original = cells(corner)
    shifted = original.copy()
    shifted.geometry = shapely.transform(original.geometry.values, lambda xy: np.array(
        [wgs84_to_gcj02(x, y) for x, y in xy]))
    source = tmp_path / "amap.geojson"
    shifted.to_file(source, driver="GeoJSON")
    imported, _ = read_areas(source, options(coord="gcj02"), geography)
    for mine, theirs in zip(imported.geometry, original.geometry, strict=True):
        assert shapely.equals_exact(mine.normalize(), theirs.normalize(), tolerance=1e-7)
    as_is, _ = read_areas(source, options(), geography)  # unconverted: hundreds of metres off
    assert shapely.distance(as_is.geometry.iloc[0].centroid,
                            original.geometry.iloc[0].centroid) > 0.002


def test_bnd005_kml(tmp_path, geography, corner):
    drivers = pyogrio.list_drivers(write=True)
    driver = next((d for d in ("LIBKML", "KML") if d in drivers), None)
    if driver is None:
        pytest.skip("this GDAL writes no KML")
    source = tmp_path / "grid.kml"
    cells(corner).to_file(source, driver=driver)
    imported, _ = read_areas(source, options(), geography)
    assert list(imported["area_id"]) == ["G1", "G2"] and imported["name"][0] == "网格G1"
    assert list(imported["parent_id"]) == [PARENT, PARENT]


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_bnd006_broken_files_are_refused_or_repaired(tmp_path, geography, corner):
    x, y = corner
    bowtie = shapely.Polygon([(x, y), (x + D, y + D), (x + D, y), (x, y + D)])
    frame = cells(corner)
    frame.loc[0, "geometry"] = bowtie
    source = tmp_path / "bowtie.geojson"
    frame.to_file(source, driver="GeoJSON")
    imported, report = read_areas(source, options(), geography)
    assert report.repaired == ["G1"] and imported.geometry.is_valid.all()
    assert imported.geometry.iloc[0].area == pytest.approx(D * D / 2)

    with pytest.raises(BoundaryError, match=r"no field name_cn \(fields: code, mc, up\)"):
        read_areas(source, options(name_field="name_cn"), geography)
    metres = tmp_path / "metres.shp"  # no .prj
    cells(corner).to_crs("EPSG:32651").set_crs(None, allow_override=True).to_file(metres)
    assert not metres.with_suffix(".prj").exists()
    with pytest.raises(BoundaryError, match="no CRS"):
        read_areas(metres, options(), geography)
    wrong = tmp_path / "wrong.geojson"  # GeoJSON is WGS-84, these are metres
    cells(corner).to_crs("EPSG:32651").set_crs(None, allow_override=True).to_file(wrong)
    with pytest.raises(BoundaryError, match="not longitude/latitude"):
        read_areas(wrong, options(), geography)
    twice = tmp_path / "twice.geojson"
    cells(corner, ids=("G1", "G1")).to_file(twice)
    with pytest.raises(BoundaryError, match="duplicate ids G1"):
        read_areas(twice, options(), geography)
    with pytest.raises(BoundaryError, match="--level"):
        read_areas(source, options(level="planet"), geography)


def test_bnd007_overlaps_and_children_outside_parents_reported(tmp_path, geography, corner,
                                                               capsys):
    frame = cells(corner, ids=("G1", "G2", "G3"), shift=D / 2)  # G2 half over G1
    east = geography.frame.geometry.loc[PARENT].bounds[2]
    frame.loc[2, "geometry"] = shapely.box(east - D, corner[1], east + D, corner[1] + D)
    source = tmp_path / "messy.geojson"
    frame.to_file(source, driver="GeoJSON")
    _, report = read_areas(source, options(parent_field="up"), geography)
    ((a, b, overlap),) = report.overlaps
    expected = (D / 2 * 111_320 * np.cos(np.radians(corner[1]))) * (D * 110_900)
    assert (a, b) == ("G1", "G2") and overlap == pytest.approx(expected, rel=0.02)
    ((child, parent, outside),) = report.outside
    assert child == "G3" and parent == PARENT and outside > 100
    code = cli.main(["boundaries", "check", str(source), "--id-field", "code",
                     "--name-field", "mc", "--level", "grid", "--parent-field", "up"])
    printed = capsys.readouterr().out
    assert code == 1 and "overlap: G1 and G2 share" in printed and "outside: G3 has" in printed
    with pytest.raises(BoundaryError, match="cannot be simplified"):
        import_file(source, options(parent_field="up", simplify_m=5), geography,
                    tmp_path / "out.geojson")
    assert not (tmp_path / "out.geojson").exists()


def test_bnd008_simplification_keeps_shared_edges(tmp_path, geography, corner):
    x, y = corner
    wiggle = [(x + D, y + i * D / 40) for i in range(41)]  # the shared edge, many vertices
    wiggle = [(px + (D / 400 if i % 2 else 0), py) for i, (px, py) in enumerate(wiggle)]
    left = shapely.Polygon([(x, y), *wiggle, (x, y + D)])
    right = shapely.Polygon([(x + 2 * D, y), (x + 2 * D, y + D), *reversed(wiggle)])
    frame = gpd.GeoDataFrame({"code": ["G1", "G2"], "mc": ["甲", "乙"]},
                             geometry=[left, right], crs="EPSG:4326")
    source = tmp_path / "wiggly.geojson"
    frame.to_file(source, driver="GeoJSON")
    report, loaded = import_file(source, options(simplify_m=5), geography,
                                 tmp_path / "city.geojson")
    before, after = report.vertices
    assert after < before / 3
    a, b = (loaded.frame.geometry.loc[aid] for aid in ("G1", "G2"))
    assert shapely.intersection(a, b).area < 1e-14  # no overlap opened
    assert shapely.union_all([a, b]).area == pytest.approx(a.area + b.area)
    shared = shapely.intersection(a.boundary, b.boundary)
    assert shared.length > D * 0.99  # still one common edge: no sliver between them
    outline = shapely.box(x, y, x + 2 * D, y + D)  # kept: the areas around share it
    assert shapely.symmetric_difference(shapely.union_all([a, b]), outline).area < 1e-14


def test_bnd009_the_command_imports_and_checks(tmp_path, corner, capsys, monkeypatch):
    monkeypatch.delenv("CITYBRAIN_BOUNDARIES", raising=False)
    source = tmp_path / "grid.gpkg"
    cells(corner).to_file(source, layer="grid", driver="GPKG")
    args = [str(source), "--layer", "grid", "--id-field", "code", "--name-field", "mc",
            "--level", "grid", "--parent-by", "containment"]
    assert cli.main(["boundaries", "import", *args]) == 2  # nowhere to write
    assert "--out" in capsys.readouterr().err
    out = tmp_path / "city.geojson"
    assert cli.main(["boundaries", "import", *args, "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert load_geography(out).areas["G2"].parent_id == PARENT
    monkeypatch.setenv("CITYBRAIN_BOUNDARIES", str(out))  # the imported city is the base now
    assert cli.main(["boundaries", "check", *args]) == 1  # the compound's gap is reported
    assert "gap: " in capsys.readouterr().out
