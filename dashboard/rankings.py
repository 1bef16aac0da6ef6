"""考核: streets and departments ranked by their closed-loop rates over a period.

The worker keeps, per report day, counters per (street, department) in the hash
`rk:<day>` (apply.lua; fields `<metric>|<street>|<department>`). A ranking reads
the days of its period (one pipelined read, at most 31 hashes), keeps what lies
in the asked area, and adds up per street or per department: nothing scans the
incidents. Every rate is over the incidents *received* (reported) in the period,
whatever happened to them since (docs/closed-loop.md).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

LEVELS = ("street", "department")
METRICS = {"n": "received", "a": "responded", "c": "closed", "o": "on_time", "w": "reworked",
           "f": "followed_up", "y": "satisfied"}
RATES = ("response_rate", "closure_rate", "on_time_rate", "rework_rate", "satisfaction_rate")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class Period:
    """A ranking period: its name and its first and last day (both included)."""

    name: str
    first: date
    last: date

    def days(self) -> list[str]:
        """Every day of the period as the counters' hash names carry it."""
        count = (self.last - self.first).days + 1
        return [(self.first + timedelta(days=i)).isoformat() for i in range(count)]


def parse_period(value: str, now: float, zone: ZoneInfo) -> Period:
    """`today`, `7d`, `30d` (ending today, in the city's time zone) or a month `YYYY-MM`."""
    today = datetime.fromtimestamp(now, zone).date()
    spans = {"today": 1, "7d": 7, "30d": 30}
    if value in spans:
        return Period(value, today - timedelta(days=spans[value] - 1), today)
    match = _MONTH.fullmatch(value or "")
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 2000:
        raise ValueError("period must be today, 7d, 30d or a month YYYY-MM")
    first = date(int(match[1]), int(match[2]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(value, first, following - timedelta(days=1))


def read_counts(client: Any, prefix: str, period: Period) -> dict[tuple[str, str, str], int]:
    """The period's counters summed over its days: (metric, street, department) -> count."""
    pipe = client.pipeline(transaction=False)
    for day in period.days():
        pipe.hgetall(f"{prefix}rk:{day}")
    counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    for fields in pipe.execute():
        for name, value in fields.items():
            metric, street, department = name.decode().split("|", 2)
            counts[(metric, street, department)] += int(value)
    return dict(counts)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def score(rates: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """The composite score, 0-100: the weighted mean of the rates that exist.

    Rework counts as its complement (fewer reopenings score higher).
    """
    parts = {"response": rates["response_rate"], "closure": rates["closure_rate"],
             "on_time": rates["on_time_rate"],
             "rework": None if rates["rework_rate"] is None else 1 - rates["rework_rate"],
             "satisfaction": rates["satisfaction_rate"]}
    total = sum(weights[name] for name, value in parts.items() if value is not None)
    if not total:
        return None
    return 100 * sum(weights[n] * v for n, v in parts.items() if v is not None) / total


def rank(counts: Mapping[tuple[str, str, str], int], level: str,
         inside: Callable[[str], bool], name: Callable[[str], str],
         weights: Mapping[str, float]) -> list[dict[str, Any]]:
    """Rows per street or department (counting what lies `inside`), ranked by score.

    Ties share a rank (1, 2, 2, 4); equal scores list the busier first, then by id.
    Incidents without a department are left out of the department ranking.
    """
    if level not in LEVELS:
        raise ValueError("level must be street or department")
    totals: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for (metric, street, department), value in counts.items():
        if metric not in METRICS or not inside(street):
            continue
        key = street if level == "street" else department
        if key:
            totals[key][metric] += value
    rows: list[dict[str, Any]] = []
    for key, c in totals.items():
        if c["n"] <= 0:
            continue
        rates = {"response_rate": _rate(c["a"], c["n"]), "closure_rate": _rate(c["c"], c["n"]),
                 "on_time_rate": _rate(c["o"], c["c"]), "rework_rate": _rate(c["w"], c["n"]),
                 "satisfaction_rate": _rate(c["y"], c["f"])}
        composite = score(rates, weights)
        rows.append({"id": key, "name": name(key), "received": c["n"],
                     **{r: None if v is None else round(v, 4) for r, v in rates.items()},
                     "score": None if composite is None else round(composite, 1)})
    rows.sort(key=lambda r: (-(r["score"] or 0.0), -r["received"], r["id"]))
    for i, row in enumerate(rows):
        same = i and rows[i - 1]["score"] == row["score"]
        row["rank"] = rows[i - 1]["rank"] if same else i + 1
    return rows


def rankings(client: Any, prefix: str, level: str, period: Period,
             inside: Callable[[str], bool], name: Callable[[str], str],
             weights: Mapping[str, float]) -> dict[str, Any]:
    """The API's answer: level, period, its days and the ranked rows."""
    rows = rank(read_counts(client, prefix, period), level, inside, name, weights)
    return {"level": level, "period": period.name, "from": period.first.isoformat(),
            "to": period.last.isoformat(), "rows": rows}
