"""Map draws with and without keeping the sources whose data did not change (same page).

    .venv/bin/python bench/map_sources.py [--draws 24] [--size 1920x1080]

The seeded demo city (`tests.browser.demo_city`: its own Redis, a worker, the app) in
headless Chromium at device scale 1. On the drawn city map, each draw recolours one
area of the risk fill and makes Plotly calculate every trace again (a new
`datarevision`), as a pushed update does; Plotly then hands every GeoJSON source to
MapLibre. Draws alternate between `assets/map-sources.js` keeping the equal sources
(on) and every source passed on as before (off: the original `setData`). Printed: the
full draw (Plotly's promise, every source parsed) median and p95 of each, and the
ratio on/off: the baseline is the same page in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import browser

DRAWS = f"""async n => {{ const gd = document.querySelector('{browser.MAP}');
    const map = gd._fullLayout.map._subplot.map;
    const id = Object.entries(map.getStyle().sources).find(([, s]) => s.type === 'geojson')[0];
    const proto = Object.getPrototypeOf(map.getSource(id));
    const keeping = proto.setData, out = {{on: [], off: []}};
    for (let i = 0; i < n; i++) {{
      const mode = i % 2 ? 'on' : 'off';
      proto.setData = mode === 'on' ? keeping : proto.cockpitPassOn;
      const data = JSON.parse(JSON.stringify(gd.data));
      const fill = data.find(d => d.uid === 'risk-fill');
      fill.z = fill.z.map((z, k) => k === i % fill.z.length ? (z > 50 ? 5 : 95) : z);
      const started = performance.now();
      await Plotly.react(gd, data, Object.assign({{}}, gd.layout, {{datarevision: i}}));
      await gd.cockpitDrawing;
      out[mode].push(performance.now() - started);
    }}
    proto.setData = keeping;
    return out; }}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=24)
    parser.add_argument("--size", default="1920x1080")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="map-sources-") as folder, \
            browser.demo_city(Path(folder)) as city:
        context = city.chromium.new_context(viewport={"width": width, "height": height},
                                            device_scale_factor=1)
        browser.offline(context)
        page = context.new_page()
        page.goto(city.base + "/?lang=en")
        page.wait_for_function(f"""() => {{ const gd = document.querySelector('{browser.MAP}');
            const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
            return m && m.map.cockpitSkipSame && !gd.cockpitDrawing; }}""", timeout=120_000)
        page.evaluate(DRAWS, 2)  # the sources hold what they were given
        times = page.evaluate(DRAWS, args.draws)
        context.close()
    print(f"city map {args.size}, {args.draws} draws, one area recoloured each")
    for mode in ("off", "on"):
        values = sorted(times[mode])
        print(f"  sources kept when equal: {mode:<3} median {statistics.median(values):7.0f} ms"
              f"  p95 {values[round(0.95 * (len(values) - 1))]:7.0f} ms")
    ratio = statistics.median(times["on"]) / statistics.median(times["off"])
    print(f"  ratio on/off (median): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
