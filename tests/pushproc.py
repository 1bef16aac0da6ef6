"""The push process for tests: `citybrain push` as a real child process, and a raw SSE reader."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from dashboard.push.message import unwire

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PushProcess:
    """`citybrain push` on its own port; `stop()` and `start()` it again on the same port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**{k: v for k, v in os.environ.items()
                       if not k.startswith("CITYBRAIN_") and k != "REDIS_URL"},
                    "PYTHONPATH": str(ROOT), **env, "CITYBRAIN_PUSH_PORT": str(self.port)}
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> None:
        """Start it and wait until it answers."""
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dashboard.cli", "push"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/push/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("the push process did not start:\n" + self.log.read_text()[-2000:])

    def stop(self, kill: bool = False) -> None:
        """End it (SIGKILL with `kill`, as a crash)."""
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(20)
        self.process = None


@contextmanager
def push_process(env: dict[str, str], log: Path) -> Iterator[PushProcess]:
    """A running push process for the block."""
    push = PushProcess(env, log)
    push.start()
    try:
        yield push
    finally:
        push.stop()


class Stream:
    """A raw server-sent events connection, read event by event."""

    def __init__(self, url: str, cookies: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, timeout_s: float = 20) -> None:
        self.response = requests.get(url, cookies=cookies, headers=headers, stream=True,
                                     timeout=timeout_s)
        self.status = self.response.status_code
        self.headers = self.response.headers
        self._lines = self.response.iter_lines(decode_unicode=True)
        self.raw: list[str] = []  # every data line received, as JSON text
        self.wire: list[str] = []  # the same as they came (deflated ones as sent)

    def next(self) -> dict[str, Any] | None:
        """The next event as {"id", "event", "data"} (data parsed), None when it ended."""
        event: dict[str, Any] = {}
        try:
            for line in self._lines:
                if line == "":
                    if event.get("event") == "update":
                        return event
                    event = {}
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    self.wire.append(value)
                    value = unwire(value)
                    self.raw.append(value)
                    event["data"] = json.loads(value) if value else None
                elif name in ("id", "event"):
                    event[name] = value
        except requests.exceptions.ChunkedEncodingError:
            return None
        return None

    def until(self, check: Any, timeout_s: float = 20) -> dict[str, Any]:
        """The first update for which `check(data)` holds (fails after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            event = self.next()
            if event is None:
                raise AssertionError("the stream ended")
            if check(event["data"]):
                return event
        raise AssertionError(f"no such update within {timeout_s} s")

    def close(self) -> None:
        """Hang up."""
        self.response.close()
