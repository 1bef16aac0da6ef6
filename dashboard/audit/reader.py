"""Reading the audit files: every process's files merged by time, filtered, in pages.

Newest first. A page ends with a cursor (the last entry's time, file and line);
the next page starts just before it, so pages neither skip nor repeat an entry
while new ones are written. Only the days the time range touches are read, one
day at a time from the newest, until the page is full.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as day_start
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.audit.chain import parse_line, split_lines
from dashboard.audit.writer import audit_files
from dashboard.geography import Geography

MAX_PAGE = 1000

SortKey = tuple[int, str, int]


@dataclass(frozen=True)
class AuditQuery:
    """Which entries to read: a time range (epoch ms, inclusive), user, action, area."""

    start_ms: int | None = None
    end_ms: int | None = None
    user: str = ""
    action: str = ""
    area: str = ""
    before: str = ""
    limit: int = 100


def cursor_of(key: SortKey) -> str:
    """The page cursor for an entry's sort key."""
    return f"{key[0]}:{key[2]}:{key[1]}"


def parse_cursor(cursor: str) -> SortKey:
    """The sort key in a cursor (ValueError if it is not one)."""
    ts, n, name = cursor.split(":", 2)
    return int(ts), name, int(n)


def parse_time(value: str, zone: ZoneInfo, end: bool = False) -> int:
    """Epoch ms from epoch ms, ISO-8601 (city time without an offset) or a date.

    A date gives its first millisecond, or its last with `end`.
    """
    value = value.strip()
    if value.isdigit():
        return int(value)
    if len(value) == 10:
        day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
        ms = int(datetime.combine(day, day_start.min, zone).timestamp() * 1000)
        return ms - 1 if end else ms
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)


def query_from(params: Mapping[str, str], zone: ZoneInfo, limit: int = 100) -> AuditQuery:
    """A query from the parameters `from`, `to`, `user`, `action`, `area`, `before`, `limit`.

    A value that does not parse raises ValueError naming it.
    """
    def get(name: str) -> str:
        return str(params.get(name) or "").strip()

    try:
        start = parse_time(get("from"), zone) if get("from") else None
        end = parse_time(get("to"), zone, end=True) if get("to") else None
    except ValueError as exc:
        raise ValueError(f"from/to: {exc} (ISO-8601, a date or epoch ms)") from exc
    if get("before"):
        parse_cursor(get("before"))
    try:
        limit = int(get("limit") or limit)
    except ValueError as exc:
        raise ValueError("limit must be a whole number") from exc
    return AuditQuery(start, end, get("user"), get("action"), get("area"), get("before"),
                      max(1, min(limit, MAX_PAGE)))


def read_day(paths: list[Path]) -> list[tuple[SortKey, dict[str, Any]]]:
    """Every entry of one day's files (seals and torn or foreign lines left out)."""
    rows = []
    for path in paths:
        lines, _ = split_lines(path.read_bytes())
        for raw in lines:
            entry = parse_line(raw)
            if entry is None or entry.get("seal") or not isinstance(entry.get("ts"), int):
                continue
            key = (entry["ts"], path.name, entry["n"])
            rows.append((key, {**entry, "file": path.name}))
    return rows


class AuditReader:
    """Pages through the audit files of one folder."""

    def __init__(self, directory: Path, zone: ZoneInfo, geography: Geography | None) -> None:
        self.directory = Path(directory)
        self.zone = zone
        self.geography = geography

    def _day(self, ms: int) -> date:
        return datetime.fromtimestamp(ms / 1000, self.zone).date()

    def entries(self, query: AuditQuery, oldest_first: bool = False
                ) -> Iterator[tuple[SortKey, dict[str, Any]]]:
        """Matching entries, newest first, all of them (the query's limit is not applied)."""
        days = audit_files(self.directory)
        first = self._day(query.start_ms) if query.start_ms is not None else None
        last = self._day(query.end_ms) if query.end_ms is not None else None
        before = parse_cursor(query.before) if query.before else None
        for day in sorted(days, reverse=not oldest_first):
            if (last and day > last) or (before and day > self._day(before[0])) \
                    or (first and day < first):
                continue
            rows = sorted(read_day(days[day]), key=lambda row: row[0],
                          reverse=not oldest_first)
            for key, entry in rows:
                if (before is None or key < before) and self.matches(entry, query):
                    yield key, entry

    def matches(self, entry: dict[str, Any], query: AuditQuery) -> bool:
        """Whether one entry passes the query's filters."""
        ts = entry["ts"]
        if query.start_ms is not None and ts < query.start_ms:
            return False
        if query.end_ms is not None and ts > query.end_ms:
            return False
        if query.user and entry.get("user") != query.user:
            return False
        if query.action and entry.get("action") != query.action:
            return False
        if query.area:
            area = entry.get("area") or ""
            if self.geography is None or area not in self.geography.areas:
                return False
            return query.area in self.geography.chain(area)
        return True

    def page(self, query: AuditQuery) -> tuple[list[dict[str, Any]], str | None]:
        """One page of matching entries, newest first, and the cursor of the next (or None)."""
        limit = max(1, min(query.limit, MAX_PAGE))
        found: list[dict[str, Any]] = []
        last_key: SortKey = (0, "", 0)
        for key, entry in self.entries(query):
            if len(found) == limit:
                return found, cursor_of(last_key)
            found.append(entry)
            last_key = key
        return found, None
