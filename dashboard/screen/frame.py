"""Everything the screen shows for one area and language, computed from one `CityView`.

`frame_for(view, area_id, lang)` computes a `Frame` once per view (kept on it): every
browser polling the same process in the same tick gets the same object, so
20 screens cost one computation. Each panel carries a short hash so that a
tick sends only the panels and map traces whose content changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from dashboard.i18n import label, t
from dashboard.kinds import BY_NAME, KINDS
from dashboard.state.view import CityView
from layers import LAYERS
from layers.base import Trace

FEED_ROWS = 11
TOP_ROWS = 10
OVERDUE_ROWS = 12
STATIC_TRACE_KEYS = frozenset({"type", "uid", "geojson", "featureidkey", "visible", "below"})


def digest(value: Any, size: int = 8) -> str:
    """A short, stable hash of JSON-able data."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return hashlib.blake2b(raw, digest_size=size).hexdigest()


@dataclass(frozen=True)
class Frame:
    """The screen's content at one moment for one area and language."""

    area_id: str
    lang: str
    summary: dict[str, Any]
    kpis: dict[str, Any]
    feed: list[dict[str, str]]
    top: list[dict[str, Any]]
    detail: dict[str, Any]
    overdue: list[dict[str, Any]]
    trend: dict[str, list[Any]]
    traces: list[Trace]
    trace_layers: list[str]
    day: str  # the view's date (MM-DD, the city's time zone): what "today" means here
    as_of: str
    last_event: str
    stale: bool
    error: str | None

    def hashes(self) -> dict[str, Any]:
        """Hash per panel, and per key of each map trace (static geometry keys left out)."""
        return {
            "kpis": digest(self.kpis), "feed": digest(self.feed), "top": digest(self.top),
            "detail": digest(self.detail), "trend": digest(self.trend),
            "overdue": digest(self.overdue),
            "traces": [{k: digest(v, 4) for k, v in tr.items() if k not in STATIC_TRACE_KEYS}
                       for tr in self.traces],
        }


def _clock(ms: int | float, view: CityView) -> str:
    zone = view.as_of.tzinfo
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%H:%M:%S")


def _district(view: CityView, area_id: str, lang: str) -> str:
    geography = view.geography
    if area_id not in geography.areas:
        return ""
    chain = geography.chain(area_id)
    return geography.name(chain[-2] if len(chain) > 1 else chain[0], lang)


def kpis(summary: dict[str, Any]) -> dict[str, Any]:
    """The KPI tile values, as numbers (None where there is nothing to show)."""
    inc = summary["incidents"]
    handled = inc["closed_today"] + inc["open"]
    return {
        "today": inc["today"], "open": inc["open"], "overdue": inc["overdue"],
        "closed": inc["closed_today"],
        "rate": round(100 * inc["closed_today"] / handled) if handled else None,
        "mttc": inc["mean_minutes_to_close"],
        "traffic": summary["traffic"]["index"], "traffic_level": summary["traffic"]["level"],
        "levels": {k: v for k, v in summary["risk"]["areas_by_level"].items() if k != "normal"},
        "kinds": {kind.name: kind.kpi(summary[kind.block]) for kind in KINDS
                  if kind.kpi_label and kind.block},
    }


def feed_items(view: CityView, area_id: str, limit: int = FEED_ROWS) -> list[dict[str, Any]]:
    """The feed's news inside the area, newest first, with the incidents gone overdue.

    The worker writes incidents (new, status changes) and level changes (an area's
    warning level, a segment turning severe, a device in alarm); an incident becoming
    overdue is no event, so it is added here by the view's clock, at its deadline.
    """
    late = view.recently_overdue(area_id, limit)
    overdue = [{"id": f"{i.incident_id}@due", "kind": "incident", "ts": i.due, "area": i.area,
                "incident_id": i.incident_id, "status": "overdue", "category": i.category,
                "severity": str(i.severity), "source": i.source, "title": i.title}
               for i in late]
    merged = [*view.feed(area_id, limit), *overdue]
    merged.sort(key=lambda item: -int(item.get("ts") or 0))  # stable: equal times keep order
    return merged[:limit]


def feed_rows(view: CityView, area_id: str, lang: str, limit: int = FEED_ROWS) -> list[dict]:
    """The newest news as display text (untrusted text stays plain text)."""
    rows = []
    for item in feed_items(view, area_id, limit):
        kind = item.get("kind", "")
        row = {"id": str(item.get("id", "")), "time": _clock(item.get("ts", 0), view),
               "kind": kind, "where": _district(view, item.get("area") or "", lang),
               "sev": str(item.get("severity") or "")}
        spec = BY_NAME.get("incident" if kind == "command" else kind)
        if spec is None:  # a kind this version does not know: its code, as text
            row["what"], row["status"], row["title"] = str(kind), "", ""
        else:
            if kind == "risk" and view.model.tree:  # the tree's own name of the indicator
                item = {**item, "indicator_name": view.model.name(
                    str(item.get("indicator")), "indicator", lang)}
            row["what"], row["status"], row["title"] = spec.feed_text(item, lang)
        rows.append(row)
    return rows


def top_rows(view: CityView, area_id: str, lang: str) -> list[dict[str, Any]]:
    """The highest-risk compounds inside the area."""
    return [{"id": s["area_id"], "name": view.geography.name(s["area_id"], lang),
             "score": s["risk"]["score"], "level": s["risk"]["level"]}
            for s in view.top_risk(area_id, "compound", TOP_ROWS)]


def detail(view: CityView, summary: dict[str, Any], lang: str) -> dict[str, Any]:
    """The selected area's risk, what drives it, and its most urgent open incidents."""
    now_ms = view.now_ms
    incidents = [
        {"id": i.incident_id, "what": label("category", i.category or "unknown", lang),
         "status": label("status", i.status, lang), "sev": i.severity,
         "overdue": i.overdue(now_ms), "title": i.shown_title(lang),
         "minutes": int((now_ms - i.start) // 60000)}
        for i in view.open_incidents(summary["area_id"], 6)
    ]
    model, risk = view.model, summary["risk"]

    def factor(f: dict[str, Any]) -> dict[str, Any]:
        return {"name": model.name(f["indicator"], "indicator", lang), "value": f["value"],
                "points": f["contribution"]}

    return {
        "score": risk["score"], "level": risk["level"],
        "factors": [factor(f) for f in risk["factors"]],
        # With a tree: the score by category first, each with its indicators
        "categories": [{"name": model.name(c["category"], "risk_category", lang),
                        "points": c["contribution"],
                        "factors": [factor(f) for f in c["indicators"]]}
                       for c in risk["categories"]] if model.tree else [],
        "incidents": incidents,
    }


def overdue_rows(view: CityView, area_id: str, lang: str,
                 escalate_factor: float) -> list[dict[str, Any]]:
    """The area's overdue incidents, the most overdue first, with where each escalated to.

    `here` marks those escalated to this very area (its level's own list).
    """
    geography = view.geography
    rows = []
    for late in view.overdue(area_id, escalate_factor, OVERDUE_ROWS):
        i, up = late.incident, late.escalated_to
        rows.append({"id": i.incident_id, "what": label("category", i.category or "unknown", lang),
                     "title": i.shown_title(lang), "sev": i.severity,
                     "late": int(late.minutes_late),  # whole minutes: a new list once a minute
                     "where": geography.name(late.responsible, lang),
                     "up": geography.name(up, lang) if up else "", "here": up == area_id})
    return rows


def compute(view: CityView, area_id: str, lang: str, escalate_factor: float = 2.0) -> Frame:
    """Build the frame (pure)."""
    summary = view.summary(area_id)
    traces: list[Trace] = []
    owners: list[str] = []
    for layer in LAYERS:
        for trace in layer.traces(view, area_id, lang):
            traces.append(trace)
            owners.append(layer.id)
    trend = view.trend(area_id)
    last_ms = int(view.raw.stats.get("last_applied_ms", "0") or 0)
    return Frame(
        area_id=area_id, lang=lang, summary=summary, kpis=kpis(summary),
        feed=feed_rows(view, area_id, lang), top=top_rows(view, area_id, lang),
        detail=detail(view, summary, lang),
        overdue=overdue_rows(view, area_id, lang, escalate_factor),
        trend={"x": [h["hour"][11:16] for h in trend], "y": [h["count"] for h in trend]},
        traces=traces, trace_layers=owners,
        day=view.as_of.strftime("%m-%d"), as_of=view.as_of.strftime("%H:%M:%S"),
        last_event=_clock(last_ms, view) if last_ms else t("none", lang),
        stale=view.stale, error=view.error,
    )


def frame_for(view: CityView, area_id: str, lang: str, escalate_factor: float = 2.0) -> Frame:
    """The frame of this view, computed once for all the clients that ask in its tick.

    Kept on the view itself (not in a process-wide memo, which kept 64 whole views,
    about 6 MB each, alive in every web process).
    """
    key = ("frame", area_id, lang, escalate_factor)
    frame = view.derived.get(key)
    if frame is None:
        frame = view.derived[key] = compute(view, area_id, lang, escalate_factor)
    return frame
