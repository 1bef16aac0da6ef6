"""One process's audit files: append a line, fsync it, seal a day's file, drop old days.

Each process (every gunicorn web process, every worker) writes its own file per
day, `audit-YYYY-MM-DD.<host>-<pid>.jsonl` (`-2`, `-3`... if the name is taken,
e.g. a restarted container with the same pid), so no two writers ever share a
file or a chain; readers merge the files by time. A line is written with one
`write` on an `O_APPEND` descriptor and fsynced before `append` returns: a crash
loses at most the entry being written (left as a torn last line), never one that
was acknowledged.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.audit.chain import encode_line, genesis, line_hash, seal_line

log = logging.getLogger(__name__)

FILE_PATTERN = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})\.([A-Za-z0-9_.-]+)\.jsonl$")


def file_day(name: str) -> date | None:
    """The day of an audit file from its name (None for any other file)."""
    match = FILE_PATTERN.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def audit_files(directory: Path) -> dict[date, list[Path]]:
    """The audit files in a folder by day, each day's files sorted by name."""
    days: dict[date, list[Path]] = {}
    if not directory.is_dir():
        return days
    for path in sorted(directory.iterdir()):
        day = file_day(path.name)
        if day is not None and path.is_file():
            days.setdefault(day, []).append(path)
    return days


def prune(directory: Path, today: date, keep_days: int) -> list[str]:
    """Delete the files of days older than `keep_days` before today; their names."""
    oldest = today - timedelta(days=keep_days)
    dropped = []
    for day, paths in audit_files(directory).items():
        if day < oldest:
            for path in paths:
                path.unlink(missing_ok=True)
                dropped.append(path.name)
    return dropped


@dataclass(frozen=True)
class Written:
    """Where an entry went: its file, line number and the line's hash."""

    file: str
    n: int
    hash: str
    day: date


def _safe_host(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40] or "host"


class AuditWriter:
    """Appends this process's audit lines; thread-safe; a fork starts its own file."""

    def __init__(self, directory: Path, zone: ZoneInfo, keep_days: int,
                 clock: Callable[[], float] = time.time, host: str | None = None) -> None:
        self.directory = Path(directory)
        self.zone = zone
        self.keep_days = keep_days
        self.clock = clock
        self.host = _safe_host(host or socket.gethostname())
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._name = ""
        self._day: date | None = None
        self._n = 0
        self._prev = ""
        atexit.register(self.close)

    def append(self, fields: dict[str, Any]) -> Written:
        """Write one entry and fsync it (raises OSError when that is not possible).

        The entry's `ts` (epoch ms), when it has one, decides its day's file.
        """
        with self._lock:
            now = fields["ts"] / 1000 if isinstance(fields.get("ts"), int) else self.clock()
            day = datetime.fromtimestamp(now, self.zone).date()
            if self._fd is None or day != self._day or os.getpid() != self._pid \
                    or self._gone():
                self._rotate(day, int(now * 1000))
            assert self._fd is not None
            line = encode_line(fields, self._n + 1, self._prev)
            try:
                _write_all(self._fd, line + b"\n")
                os.fsync(self._fd)
            except OSError:
                self._drop()  # the next entry starts a fresh file and chain
                raise
            self._n += 1
            self._prev = line_hash(line)
            return Written(self._name, self._n, self._prev, day)

    def close(self) -> None:
        """Seal the open file (at exit, or when the day ends)."""
        with self._lock:
            self._seal(int(self.clock() * 1000))

    def _gone(self) -> bool:
        """Whether the open file was deleted (lines written to it would be lost)."""
        assert self._fd is not None
        if os.fstat(self._fd).st_nlink > 0:
            return False
        log.error("audit: %s was deleted while open; starting a new file", self._name)
        self._drop()
        return True

    def _rotate(self, day: date, now_ms: int) -> None:
        self._seal(now_ms)
        self.directory.mkdir(parents=True, exist_ok=True)
        for dropped in prune(self.directory, day, self.keep_days):
            log.info("audit: dropped %s (older than %d days)", dropped, self.keep_days)
        pid = os.getpid()
        base = f"audit-{day.isoformat()}.{self.host}-{pid}"
        for attempt in range(1, 1000):
            name = f"{base}{'' if attempt == 1 else f'-{attempt}'}.jsonl"
            try:
                fd = os.open(self.directory / name,
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"no free audit file name for {base}")
        _fsync_dir(self.directory)
        self._fd, self._pid, self._name, self._day = fd, pid, name, day
        self._n, self._prev = 0, genesis(name)

    def _seal(self, now_ms: int) -> None:
        if self._fd is None or os.getpid() != self._pid:
            self._fd = None
            return
        try:
            _write_all(self._fd, seal_line(self._n + 1, self._prev, now_ms) + b"\n")
            os.fsync(self._fd)
        except OSError as exc:
            log.error("audit: could not seal %s: %s", self._name, exc)
        self._drop()

    def _drop(self) -> None:
        if self._fd is not None and os.getpid() == self._pid:
            try:
                os.close(self._fd)
            except OSError as exc:
                log.warning("audit: closing %s: %s", self._name, exc)
        self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
