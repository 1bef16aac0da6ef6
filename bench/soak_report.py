"""The soak's verdict and plot, from its samples (also on their own: re-render a folder).

    python bench/soak_report.py docs/soak [--warmup 600]

Reads `<folder>/samples.csv` and `<folder>/restarts.json` (written by `bench/soak.py`),
writes `<folder>/summary.json` and `<folder>/soak.png`, prints the summary. For the JS
heap and the DOM node count: the value at the start after the warm-up (median of the
first `EDGE` samples from `--warmup` seconds on), at the end (median of the last
`EDGE`), the least-squares slope per hour over the samples after the warm-up, and
"flat" when the end is within 10 % of the start.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path
from typing import Any

EDGE = 3  # samples whose median is "the start" and "the end" (one minute each)
FLAT_WITHIN = 0.10
SERIES = {  # column: what it is, in the summary and the plot
    "heap_mb": "JS heap used (MB, performance.memory.usedJSHeapSize)",
    "heap_after_gc_mb": "JS heap used after a full GC (MB)",
    "dom_nodes": "DOM nodes (document.getElementsByTagName('*').length)",
    "react_fibers": "React fibers alive (CDP Runtime.queryObjects of their prototype)",
}
RSS = ("web", "worker", "push", "feed", "redis")


def number(value: Any) -> float | None:
    """A CSV cell as a float (None when empty)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 2:
        return None
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600


def trend(rows: list[dict[str, Any]], column: str, warmup_s: float) -> dict[str, Any]:
    """Start after the warm-up, end, slope per hour and the flat verdict of one column."""
    points = [(t, v) for r in rows
              if (t := number(r["t_s"])) is not None and t >= warmup_s
              and (v := number(r.get(column))) is not None]
    if not points:
        return {"samples": 0}
    start = statistics.median(v for _, v in points[:EDGE])
    end = statistics.median(v for _, v in points[-EDGE:])
    slope = slope_per_hour(points)
    change = (end - start) / start if start else None
    return {"samples": len(points), "start": round(start, 2), "end": round(end, 2),
            "min": round(min(v for _, v in points), 2),
            "max": round(max(v for _, v in points), 2),
            "slope_per_hour": None if slope is None else round(slope, 3),
            "change": None if change is None else round(change, 4),
            "flat": change is not None and abs(change) <= FLAT_WITHIN}


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """The samples of a soak folder."""
    path = folder / "samples.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_restarts(folder: Path) -> list[dict[str, Any]]:
    """The restarts the soak made and how the page came back from each."""
    path = folder / "restarts.json"
    return json.loads(path.read_text()) if path.exists() else []


def summarize(rows: list[dict[str, Any]], restarts: list[dict[str, Any]],
              warmup_s: float) -> dict[str, Any]:
    """The soak's figures: memory trends, staleness, restarts and what went wrong."""
    if not rows:
        return {"samples": 0}
    first, last = rows[0], rows[-1]
    since = [v for r in rows if (v := number(r.get("since_update_s"))) is not None]
    rss = {role: trend(rows, f"rss_mb_{role}", warmup_s) for role in RSS}
    return {
        "samples": len(rows), "started": first["utc"], "last_sample": last["utc"],
        "ran_s": number(last["t_s"]), "warmup_s": warmup_s,
        **{column: trend(rows, column, warmup_s) for column in SERIES},
        "since_update_s": {"median": statistics.median(since) if since else None,
                           "max": max(since, default=None)},
        "rss_mb": rss,
        "redis_used_mb": trend(rows, "redis_used_mb", warmup_s),
        "applied": number(last.get("applied")),
        "page_loads": number(last.get("page_loads")),
        "reopened_by_soak": number(last.get("reopened_by_soak")),
        "guard_reloads": number(last.get("guard_reloads")),
        "console_errors": number(last.get("console_errors")),
        "console_errors_outside_restarts": number(last.get("console_errors_unexpected")),
        "page_errors": number(last.get("page_errors")),
        "restarts": restarts,
    }


def plot(rows: list[dict[str, Any]], restarts: list[dict[str, Any]], path: Path,
         warmup_s: float, title: str) -> None:
    """Heap, DOM nodes, fibers, time since the last update and RSS over time, restarts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [(number(r["t_s"]) or 0) / 60 for r in rows]

    def column(name: str) -> list[float]:
        return [v if (v := number(r.get(name))) is not None else float("nan") for r in rows]

    fig, axes = plt.subplots(5, 1, figsize=(11, 14), sharex=True)
    panels: list[tuple[Any, list[tuple[str, str]], str]] = [
        (axes[0], [("heap_mb", "used"), ("heap_after_gc_mb", "after GC")], "JS heap (MB)"),
        (axes[1], [("dom_nodes", "DOM nodes")], "DOM nodes"),
        (axes[2], [("react_fibers", "React fibers")], "React fibers"),
        (axes[3], [("since_update_s", "since last update")], "seconds since update"),
        (axes[4], [(f"rss_mb_{role}", role) for role in RSS], "RSS (MB)"),
    ]
    for ax, lines, label in panels:
        for name, legend in lines:
            ax.plot(minutes, column(name), label=legend, linewidth=1.2)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.axvspan(0, warmup_s / 60, color="0.9", zorder=0)
        for restart in restarts:
            ax.axvline(restart["at_s"] / 60, color="tab:red", linestyle="--", linewidth=0.8)
        if len(lines) > 1:
            ax.legend(loc="upper left", fontsize=8)
    for restart in restarts:
        axes[0].annotate(f"{restart['what']} restart", (restart["at_s"] / 60, 1.0),
                         xycoords=("data", "axes fraction"), fontsize=8, color="tab:red",
                         rotation=90, va="top", ha="right")
    axes[-1].set_xlabel("minutes (grey: warm-up)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report(folder: Path, warmup_s: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write summary.json and soak.png into the folder; answer the summary."""
    rows, restarts = read_rows(folder), read_restarts(folder)
    summary = {**(extra or {}), **summarize(rows, restarts, warmup_s)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    if rows:
        plot(rows, restarts, folder / "soak.png", warmup_s, title(summary))
    return summary


def title(summary: dict[str, Any]) -> str:
    """The plot's title: the feed's rate and whether the wall toured."""
    rate = f" at {summary['rate']:g} events/s" if summary.get("rate") else ""
    every = summary.get("tour_every_s")
    tour = f"touring every {every:g} s" if every else "on the city, no tour"
    return f"Soak: the wall in headless Chromium, demo feed{rate}, {tour}"


def headline(summary: dict[str, Any]) -> str:
    """The lines a person reads first: heap and DOM start, end, slope, flat or not."""
    lines = []
    for column in SERIES:
        s = summary.get(column) or {}
        if s.get("samples"):
            lines.append(f"{column}: start {s['start']} end {s['end']} "
                         f"slope {s['slope_per_hour']}/h change {s['change']:+.1%} "
                         f"-> {'flat' if s['flat'] else 'NOT flat'}")
    for restart in summary.get("restarts", []):
        lines.append(f"{restart['what']} restart at {restart['at_s']:.0f} s: "
                     f"recovered={restart.get('recovered')} banner_shown="
                     f"{restart.get('banner_shown')} banner_cleared_s="
                     f"{restart.get('banner_cleared_s')} updates_resumed_s="
                     f"{restart.get('updates_resumed_s')} longest_gap_s="
                     f"{restart.get('longest_gap_s')}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--warmup", type=float, default=600, help="seconds")
    args = parser.parse_args()
    written = args.folder / "summary.json"  # the run's settings, kept on a new report
    settings = json.loads(written.read_text()) if written.exists() else {}
    summary = report(args.folder, args.warmup, settings)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(headline(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
