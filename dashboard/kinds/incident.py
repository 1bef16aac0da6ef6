"""Incidents (work orders) through their closed loop: report, dispatch, ..., close.

Not a register: the Lua script keeps one record per incident (status by event
time, report time, place, descriptive fields), per-day counters and the action
history of officials' commands; the view sums the open ones up the area tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from dashboard.i18n import label, t
from dashboard.kinds.base import (
    Demo,
    Event,
    Fields,
    Invalid,
    Kind,
    RowContext,
    identifier,
    number,
    require,
    round6,
)

STATUSES = ("reported", "dispatched", "in_progress", "resolved", "verified", "closed", "reopened")
SOURCES = ("hotline", "grid", "video_ai", "sensor", "other")
MAX_TITLE_CHARS = 200
_STATUS_RANK = {status: str(rank) for rank, status in enumerate(STATUSES)}
# an event's fields the row carries as they are, and their names in the row
_ROW_NAMES = (("category", "cat"), ("source", "src"), ("severity", "sev"), ("title", "title"),
              ("satisfaction", "sat"))


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """An open incident as the read side keeps it (the script's `open` entry)."""

    incident_id: str
    area: str
    lon: float | None
    lat: float | None
    category: str  # "" when never given
    source: str
    severity: int
    status: str
    status_ts: int
    start: int  # report time (or its first event), epoch ms
    due: int  # start + its SLA
    title: str
    department: str

    @classmethod
    def from_stored(cls, incident_id: str, data: Mapping[str, Any]) -> OpenIncident:
        """From the stored JSON (short keys, written by apply.lua)."""
        return cls(incident_id, data["area"], data.get("lon"), data.get("lat"), data["cat"],
                   data["src"], int(data["sev"]), data["st"], data["sts"], data["start"],
                   data["due"], data["title"], data["dept"])

    @classmethod
    def decode(cls, incident_id: str, stored: bytes) -> OpenIncident:
        """From the bytes of its `open` hash field."""
        return cls.from_stored(incident_id, orjson.loads(stored))

    def overdue(self, now_ms: float) -> bool:
        """Past its deadline at that moment."""
        return self.due <= now_ms

    def shown_title(self, lang: str) -> str:
        """Its title for a list; a hotspot case (未诉先办) has none: its source's name."""
        if self.title or self.source != "proactive":
            return self.title
        return label("source", "proactive", lang)

    def as_json(self, now_ms: float) -> dict[str, Any]:
        """The API's shape of it (the keys the API has always had) and whether it is overdue."""
        out: dict[str, Any] = {"incident_id": self.incident_id, "area": self.area}
        if self.lon is not None:
            out["lon"] = self.lon
        if self.lat is not None:
            out["lat"] = self.lat
        out.update({"cat": self.category, "src": self.source, "sev": self.severity,
                    "st": self.status, "sts": self.status_ts, "start": self.start,
                    "due": self.due, "title": self.title, "dept": self.department,
                    "overdue": self.overdue(now_ms)})
        return out


@dataclass(frozen=True, slots=True)
class OverdueIncident:
    """An overdue open incident, how late it is, and who answers for it."""

    incident: OpenIncident
    minutes_late: float
    responsible: str  # its street (or district)
    escalated_to: str | None  # one level up, when late by more than the escalation factor

    def as_json(self, now_ms: float) -> dict[str, Any]:
        """The API's shape of it."""
        return {**self.incident.as_json(now_ms), "minutes_late": self.minutes_late,
                "responsible": self.responsible, "escalated_to": self.escalated_to}


class IncidentKind(Kind):
    """`kind=incident` (and officials' commands, which update an incident)."""

    name = "incident"
    doc = "Incidents through their closed loop, with overdue deadlines."
    needs_place = False
    labels: ClassVar[tuple[str, ...]] = ("category", "status", "source", "severity")
    block = "incidents"

    def parse(self, fields: Fields) -> tuple[Fields, bool]:
        """incident_id, status; category on reports; optional source, severity, title ..."""
        identifier(fields, "incident_id")
        status = require(fields, "status")
        if status not in STATUSES:
            raise Invalid("unknown_status",
                          f"status {status[:40]!r} is not one of the contract's")
        data = {"incident_id": fields["incident_id"], "status": status}
        category = fields.get("category") or None
        if category is None and status == "reported":
            raise Invalid("missing_field", "field 'category' is required on status reported")
        if category is not None:
            data["category"] = identifier(fields, "category") or ""
        source = fields.get("source") or None
        if source is not None:
            if source not in SOURCES:
                raise Invalid("bad_value", f"source must be one of {', '.join(SOURCES)}")
            data["source"] = source
        severity = fields.get("severity") or None
        if severity is not None:
            if severity not in ("1", "2", "3", "4"):
                raise Invalid("bad_value", "severity must be 1, 2, 3 or 4")
            data["severity"] = severity
        title = fields.get("title")
        if title:
            if len(title) > MAX_TITLE_CHARS:
                raise Invalid("bad_value", f"title is {len(title)} characters, over 200")
            data["title"] = title
        department = fields.get("department")
        if department:
            data["department"] = department
        sla = number(fields, "sla_minutes")
        if sla is not None:
            if sla <= 0:
                raise Invalid("bad_value", "sla_minutes must be positive")
            data["sla_minutes"] = repr(sla)
        return data, status == "reported"

    def row(self, event: Event, area: str, feed: str, ctx: RowContext) -> dict[str, Any]:
        """An incident update; a command (`kind=command`) also carries a history entry.

        A new report without a department is routed (分类转办): the rule's department and
        SLA, status `dispatched` at the report's time, and a history entry naming the rule.
        """
        data = event.data
        status = data["status"]
        day, hour = ctx.day_hour(event.ts)
        department, sla = data.get("department", ""), data.get("sla_minutes", "")
        routed = ""  # the dispatch's status key, when routing dispatches it
        history = ""
        if event.kind != "incident":
            history = orjson.dumps({
                "ts": event.ts, "action": data["action"], "user": data["user"],
                "note": data["note"], "department": data.get("department", ""),
                **({"satisfaction": data["satisfaction"]} if "satisfaction" in data else {}),
                **({"report": data["report"]} if "report" in data else {}),
            }).decode()
        elif status == "reported" and not department and (rule := ctx.route(
                data.get("category", ""), area, data.get("severity", "2"))) is not None:
            department = rule.department
            if not sla and rule.sla_minutes is not None:
                sla = repr(float(rule.sla_minutes))
            routed = f"{event.ts:015d}|{_STATUS_RANK['dispatched']}|{event.event_id}"
            history = orjson.dumps({"ts": event.ts, "action": "dispatch", "user": "routing",
                                    "note": rule.describe(), "department": department}).decode()
        # (a field that would be '' is left out: the script reads it as '')
        row: dict[str, Any] = {"a": "inc", "day": day, "hour": hour, "iid": data["incident_id"],
                               "loc": "1" if status == "reported" else "0"}
        street = ""
        if area:
            row["area"] = area
            street = ctx.responsible(area)
            if street:
                row["str"] = street
        if event.lon is not None:
            row["lon"] = round6(event.lon)
        if event.lat is not None:
            row["lat"] = round6(event.lat)
        if status:
            row["st"] = status
            row["stk"] = f"{event.ts:015d}|{_STATUS_RANK[status]}|{event.event_id}"
        for name, short in _ROW_NAMES:
            if value := data.get(name):
                row[short] = value
        if department:
            row["dept"] = department
        if sla:
            row["sla"] = sla
        action = data.get("action")
        if action == "close" and status == "resolved" and data["user"]:
            row["rby"] = data["user"]
        if history:
            row["hist"] = history
        if routed:
            row["ast"], row["astk"] = "dispatched", routed
        if action == "split" and (report := data.get("report")):
            row["spl"] = report
        # where a hotspot case its report makes goes (未诉先办; routed in the script)
        if status == "reported" and area and (
                case_route := ctx.case_route(data.get("category", ""), street)):
            row["hr"] = case_route
        return row

    def feed_text(self, item: Mapping[str, Any], lang: str) -> tuple[str, str, str]:
        """Category, status, title (a proactive case without one: its source's name).

        A report merged into another's case (多源合并) shows so instead of its status.
        """
        status = item.get("status")
        title = item.get("title") or (label("source", "proactive", lang)
                                      if item.get("source") == "proactive" else "")
        shown = (t("overdue", lang) if status == "overdue" else
                 t("merged", lang) if item.get("case") else label("status", status, lang))
        return (label("category", item.get("category") or "unknown", lang), shown, str(title))

    def demo(self, sim: Any) -> Demo | None:
        """New incidents (their updates are due on simulated time, before any kind)."""
        return sim.incident_demo()


KIND = IncidentKind()
