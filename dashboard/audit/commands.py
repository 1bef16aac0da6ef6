"""`citybrain audit verify` and `citybrain audit export`: check the chains, write CSV."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

import redis

from dashboard.audit.chain import Head, check_file
from dashboard.audit.reader import AuditQuery, AuditReader
from dashboard.audit.writer import audit_files
from dashboard.auth.audit import heads_key
from dashboard.export import cell
from dashboard.settings import Settings

CSV_COLUMNS = ("time", "user", "role", "address", "action", "target", "area", "detail",
               "file", "line")


def redis_heads(client: redis.Redis, prefix: str) -> dict[date, dict[str, Head]]:
    """The last line Redis saw written to each file, by day."""
    found: dict[date, dict[str, Head]] = {}
    marker = heads_key(prefix, "")
    for key in client.scan_iter(match=marker + "*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        try:
            day = date.fromisoformat(name[len(marker):])
        except ValueError:
            continue
        for file, value in client.hgetall(key).items():
            n, digest = value.decode().split(" ", 1)
            found.setdefault(day, {})[file.decode()] = Head(int(n), digest)
    return found


def verify(folder: Path, since: date | None, today: date, keep_days: int,
           heads: dict[date, dict[str, Head]], out: IO[str]) -> int:
    """Check every file from `since`; print the first bad line of each; 1 if any, else 0.

    `heads` (from Redis) gives each file's last line: a file cut at its end, or gone
    altogether (within `keep_days`), counts as removed.
    """
    days = audit_files(folder)
    oldest_kept = today - timedelta(days=keep_days)
    files = lines = bad = 0
    for day in sorted(set(days) | {d for d in heads if d >= oldest_kept}):
        if since and day < since:
            continue
        known = heads.get(day, {})
        present = {path.name for path in days.get(day, [])}
        for name in sorted(set(known) - present):
            bad += 1
            print(f"{folder / name}:1: removed (the whole file; Redis recorded "
                  f"{known[name].n} lines)", file=out)
        for path in days.get(day, []):
            result = check_file(path, known.get(path.name))
            files, lines = files + 1, lines + result.lines
            if not result.ok:
                bad += 1
                print(f"{path}:{result.problem_line}: {result.problem}", file=out)
                continue
            if result.torn:
                print(f"{path}:{result.lines + 1}: note: incomplete last line (a crash or a "
                      "failed write while writing it)", file=out)
            if not result.sealed and day < today:
                print(f"{path}: note: not sealed (its process stopped without sealing it, "
                      "or has written nothing since that day)", file=out)
    print(f"audit verify: {files} files, {lines} lines, "
          f"{'OK' if not bad else f'{bad} file(s) changed or removed'}", file=out)
    return 1 if bad else 0


def export_csv(reader: AuditReader, query: AuditQuery, settings: Settings,
               out: IO[str]) -> int:
    """The matching entries as CSV (UTF-8 with BOM, oldest first); the number written."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for _, entry in reader.entries(query, oldest_first=True):
        moment = datetime.fromtimestamp(entry["ts"] / 1000, settings.zone)
        writer.writerow([cell(v) for v in (
            moment.isoformat(timespec="milliseconds"), entry.get("user"), entry.get("role"),
            entry.get("address"), entry.get("action"), entry.get("target"),
            entry.get("area"), entry.get("detail"), entry["file"], entry["n"])])
        count += 1
    return count


def today_in(settings: Settings, clock: Callable[[], float] = time.time) -> date:
    """Today in the city's time zone."""
    return datetime.fromtimestamp(clock(), settings.zone).date()
