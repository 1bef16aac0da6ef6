"""Build the demo city's offline context layer (coastline) from OpenStreetMap data.

    npm pack @geo-maps/countries-coastline-1m@0.6.0 && tar xzf geo-maps-*.tgz
    python scripts/build_context.py package/map.geo.json [--city shanghai]

The npm package `@geo-maps/countries-coastline-1m` (0.6.0) ships the countries' land
polygons cut at the OpenStreetMap coastline (data © OpenStreetMap contributors, ODbL 1.0).
This keeps what lies within `--margin` degrees of the city's extent, takes the polygons'
outlines without the cut's straight edges (the coastline: the sea shore, the Yangtze
estuary and its islands), simplifies them by `--tolerance` degrees and writes
`dashboard/data/context/<city>.geojson` (WGS-84), with its source and attribution.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import box, mapping

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "@geo-maps/countries-coastline-1m 0.6.0 (npm), from OpenStreetMap"
ATTRIBUTION = "© OpenStreetMap contributors"


def coastline(path: Path, extent: tuple[float, float, float, float], margin: float,
              tolerance: float) -> shapely.Geometry:
    """The land outlines inside the extent (plus margin), without the cut's edges."""
    x0, y0, x1, y1 = extent
    frame = box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)
    land = gpd.read_file(path, bbox=frame.bounds).to_crs(4326)
    outline = shapely.union_all(land.clip(frame).geometry.boundary.values)
    cut = frame.exterior.buffer(1e-7)
    lines = shapely.line_merge(outline.difference(cut))
    return shapely.simplify(lines, tolerance, preserve_topology=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("coastline", type=Path, help="map.geo.json of the npm package")
    parser.add_argument("--city", default="shanghai")
    parser.add_argument("--margin", type=float, default=0.1, help="degrees")
    parser.add_argument("--tolerance", type=float, default=0.0003, help="degrees")
    args = parser.parse_args()
    city = gpd.read_file(ROOT / "dashboard" / "data" / f"{args.city}.geojson").to_crs(4326)
    lines = coastline(args.coastline, tuple(city.total_bounds), args.margin, args.tolerance)
    geometry = json.loads(json.dumps(mapping(shapely.set_precision(lines, 1e-5))))
    out = ROOT / "dashboard" / "data" / "context" / f"{args.city}.geojson"
    out.write_text(json.dumps({
        "type": "FeatureCollection", "name": f"{args.city} context: coastline",
        "features": [{"type": "Feature", "geometry": geometry, "properties": {
            "kind": "coastline", "source": SOURCE, "license": "ODbL-1.0",
            "attribution": ATTRIBUTION}}],
    }, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{out}: {shapely.get_num_coordinates(lines)} points, "
          f"{out.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
