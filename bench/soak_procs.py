"""The soak's view of the processes: ports, /healthz, /proc RSS by role, log lines, CSV rows."""

from __future__ import annotations

import csv
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ROLES = ("supervisor", "web", "worker", "push", "feed", "redis")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> dict[str, Any] | None:
    """The JSON answer (also of a 503), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        try:
            return json.load(exc)  # type: ignore[no-any-return]
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def children_of(pid: int) -> list[int]:
    """Direct children of a process (from /proc)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    """A process's command line, spaces between the arguments."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def role_of(line: str) -> str | None:
    """Which of `citybrain run`'s children a command line is."""
    if "redis-server" in line:
        return "redis"
    if "gunicorn" in line:
        return "web"
    words = line.split()
    for role in ("worker", "push"):
        if role in words:
            return role
    return "feed" if "simulate" in words else None


def rss_by_role(run_pid: int) -> dict[str, int]:
    """RSS (kB) of the supervisor and each child (the web with its gunicorn workers)."""
    rss = dict.fromkeys(ROLES, 0)
    rss["supervisor"] = rss_kb(run_pid)
    for pid in children_of(run_pid):
        role = role_of(cmdline(pid))
        if role is not None:
            rss[role] += rss_kb(pid) + (
                sum(rss_kb(p) for p in children_of(pid)) if role == "web" else 0)
    return rss


def child_pid(run_pid: int, marker: str) -> int:
    """The pid of the child whose command line holds `marker` (0: none)."""
    return next((pid for pid in children_of(run_pid) if marker in cmdline(pid)), 0)


class LogCounter:
    """Counts the lines of a growing log file that hold a marker, reading only what is new."""

    def __init__(self, path: Path, marker: str) -> None:
        self.path, self.marker = path, marker.encode()
        self.offset = self.seen = 0
        self.rest = b""

    def count(self) -> int:
        """Lines holding the marker so far."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return self.seen
        self.offset += len(chunk)
        *lines, self.rest = (self.rest + chunk).split(b"\n")
        self.seen += sum(1 for line in lines if self.marker in line)
        return self.seen


def write_row(handle: IO[str], writer: csv.DictWriter[str] | None,
              row: dict[str, Any]) -> csv.DictWriter[str]:
    """Append a row (the header first), flushed; the writer for the next one."""
    if writer is None:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
    writer.writerow(row)
    handle.flush()
    return writer
