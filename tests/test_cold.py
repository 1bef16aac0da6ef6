"""A cold web: gunicorn as in the Procfile, asked for everything at the instant its port opens.

Dash registers the component libraries it serves on a process's first request;
a second request thread that came in meanwhile answered 500 ("dash" is not a
registered library) and a wall PC booting with the server stayed blank
(issue 9, item 11). Run: pytest -k cold.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dashboard.app import create_app
from tests.test_cli import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
COLD_STARTS = 4
PARALLEL = 30
# What the renderer fetches as soon as its scripts run, besides the page's own URLs.
RENDERER_URLS = ("/_dash-layout", "/_dash-dependencies")


def web_command(port: int) -> str:
    """The Procfile's `web:` line, as honcho or foreman would run it on this port."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))
    return line.removeprefix("web:").strip().replace("${PORT:-8050}", str(port))


def page_urls(settings) -> list[str]:  # type: ignore[no-untyped-def]
    """The page and every script and style sheet it names, and the renderer's first reads."""
    html = create_app(settings).server.test_client().get("/").get_data(as_text=True)
    assets = re.findall(r'<(?:script|link)[^>]*?(?:src|href)="(/[^"]+)"', html)
    assert len(assets) >= 8, html[:2000]
    return ["/", *assets, *RENDERER_URLS]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    """Return the instant the port accepts a connection (gunicorn's master has bound it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            return
        except OSError:
            time.sleep(0.002)
    raise AssertionError(f"port {port} did not open in {timeout_s} s")


def status(url: str) -> int | str:
    """The HTTP status of a GET (the body read to its end), or why there was none."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:  # refused, reset, timed out: reported with the statuses
        return f"{type(error).__name__}: {error}"


def cold_start(urls: list[str], env: dict[str, str], log: Path) -> dict[str, list[int | str]]:
    """Start the web, fire PARALLEL requests over the URLs the instant the port opens.

    gunicorn's log goes to a file (a pipe nobody reads while it serves could fill up).
    """
    port = free_port()
    with log.open("w") as errors:
        proc = subprocess.Popen(["bash", "-c", "exec " + web_command(port)], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        base = f"http://127.0.0.1:{port}"
        asked = [urls[i % len(urls)] for i in range(PARALLEL)]
        start = threading.Barrier(PARALLEL)

        def fire(path: str) -> int | str:
            start.wait()
            return status(base + path)

        with ThreadPoolExecutor(PARALLEL) as pool:
            wait_for_port(port, proc)
            codes = list(pool.map(fire, asked))
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn: quick shutdown
        proc.wait(timeout=30)
    answers: dict[str, list[int | str]] = {}
    for path, code in zip(asked, codes, strict=True):
        answers.setdefault(path, []).append(code)
    failed = {p: c for p, c in answers.items() if set(c) != {200}}
    assert not failed, f"{failed}\n{log.read_text()[-3000:]}"
    return answers


def test_cold001_every_asset_answers_200_from_the_first_instant(settings, client, tmp_path):
    """4 cold starts x 30 parallel requests for the page, its scripts and styles: all 200.

    `client` flushed the database: no accounts, so nothing needs a session.
    """
    urls = page_urls(settings)
    env = clean_env(REDIS_URL=settings.redis_url, CITYBRAIN_AUDIT_DIR=str(tmp_path / "audit"),
                    PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    for i in range(COLD_STARTS):
        answers = cold_start(urls, env, tmp_path / f"gunicorn-{i}.log")
        assert set(answers) == set(urls)
    print(f"{COLD_STARTS} cold starts x {PARALLEL} requests over {len(urls)} URLs: all 200 "
          f"in {time.monotonic() - started:.1f} s ({web_command(0)})")
