"""Shared fixtures: a real Redis (REDIS_URL or an embedded server), settings, geography."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dashboard.geography import Geography, load_geography
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.settings import Settings
from tests.browser import CONSOLE, Allowed
from tests.events import MIDDAY_TZ


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set, otherwise a real redis-server this test session starts."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed database."""
    connection = connect(redis_url)
    connection.flushdb()
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def geography() -> Geography:
    """The shipped Shanghai demo city."""
    return load_geography(None, "shanghai")


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Default settings on the test Redis, with a short cache so tests see fresh state.

    The audit files go to the test's own folder.
    """
    return Settings.load(env={"REDIS_URL": redis_url, "CITYBRAIN_CACHE_TTL_S": "0.001",
                              "CITYBRAIN_AUDIT_DIR": str(tmp_path / "audit"),
                              "CITYBRAIN_TZ": MIDDAY_TZ})


@pytest.fixture(autouse=True)
def no_console_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a browser test whose pages log a console error or throw an uncaught exception.

    Checked before the test (what loading its module's pages logged) and after it. A test
    that provokes one on purpose names it: `@pytest.mark.allow_console(pattern, reason)`.
    """
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    allowed = tuple(Allowed(*m.args, **m.kwargs)
                    for m in request.node.iter_markers("allow_console"))
    before = CONSOLE.take(allowed)
    if before:
        pytest.fail("the browser logged errors before the test:\n" + "\n".join(before))
    yield
    after = CONSOLE.take(allowed)
    if after:
        pytest.fail("the browser logged errors:\n" + "\n".join(after))
