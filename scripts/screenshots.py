"""Screenshots of the screen at every size it is made for, at device scale 1.

    python scripts/screenshots.py [--out docs/screenshots] [--only 1366x768 390x844]

Serves the seeded demo city (its own Redis, a worker and the app, as the browser
tests do: `tests/browser.py`) and shows it in Debian's Chromium, offline, at each
of `SCREEN_SIZES`: the city at every size (`screen-<w>x<h>.png`), and Xuhui at
the official's laptop and phone sizes (`screen-xuhui-<w>x<h>.png`). Each shot
waits until the map has fitted its selection into its real box.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import browser

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DISTRICT_SIZES = ((1366, 768), (390, 844))  # where a district's official looks at it
AREAS = {"310000": 16, "310104": 957}  # the city and Xuhui, with the areas each fills


def shoot(city, size: tuple[int, int], area: str, path: Path) -> list[str]:
    """One screenshot of the area at that size; the layout problems seen on it."""
    context = city.chromium.new_context(viewport={"width": size[0], "height": size[1]},
                                        device_scale_factor=1)
    tried = browser.offline(context)
    try:
        page = context.new_page()
        page.goto(f"{city.base}/?area={area}")
        patience = browser.patience_ms(size)
        browser.wait_map(page, AREAS[area], timeout_ms=patience)
        bounds = city.geography.frame.geometry.loc[area].bounds
        problems = [] if browser.wait_fitted(page, bounds, timeout_ms=patience) else [
            "the map did not fit the area"]
        problems += browser.layout_problems(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        context.close()
    return problems + [f"tried to leave the machine: {url}" for url in tried]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="*", default=None, help="sizes such as 1366x768")
    args = parser.parse_args()
    sizes = [s for s in browser.SCREEN_SIZES
             if args.only is None or f"{s[0]}x{s[1]}" in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    with tempfile.TemporaryDirectory() as work, browser.demo_city(Path(work)) as city:
        for size in sizes:
            shots = [("310000", args.out / f"screen-{size[0]}x{size[1]}.png")]
            if size in DISTRICT_SIZES:
                shots.append(("310104", args.out / f"screen-xuhui-{size[0]}x{size[1]}.png"))
            for area, path in shots:
                problems = shoot(city, size, area, path)
                failed = failed or bool(problems)
                print(f"{path.name}: {path.stat().st_size // 1024} KiB"
                      + "".join(f"\n  ! {p}" for p in problems))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
