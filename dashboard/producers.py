"""Producer tokens for the HTTP intake: `citybrain producers add|list|revoke NAME`.

A producer (a 12345 hotline system, a video-AI vendor) gets one long random
token, shown once at `add`; Redis keeps only its SHA-256 digest (the token is
random, so a slow hash adds nothing). A token may be limited to some kinds and
to an area: its events of other kinds, or located outside the area, are
rejected.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass

import orjson
import redis

from dashboard.geography import Geography
from dashboard.kinds import BY_NAME

_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
TOKEN_PREFIX = "cbp_"


class ProducerError(ValueError):
    """A producer command cannot be done; the message says why."""


@dataclass(frozen=True)
class Producer:
    """A producer allowed to push events: its kinds (empty: all) and its area (None: all)."""

    name: str
    kinds: tuple[str, ...] = ()
    area: str | None = None

    def allows_kind(self, kind: str) -> bool:
        """Whether the token may send events of this kind."""
        return not self.kinds or kind in self.kinds


def token_digest(token: str) -> str:
    """What is stored of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class ProducerStore:
    """The producers of one city: a hash of records and a hash of token digests."""

    def __init__(self, client: redis.Redis, prefix: str, geography: Geography) -> None:
        self.client = client
        self.key = prefix + "producers"
        self.tokens_key = prefix + "producer_tokens"
        self.geography = geography

    def add(self, name: str, kinds: tuple[str, ...] = (), area: str | None = None) -> str:
        """Create a producer and return its token (the only time it is shown)."""
        if not _NAME.fullmatch(name):
            raise ProducerError("name must be 1-64 characters of A-Za-z0-9._@-")
        unknown = [k for k in kinds if k not in BY_NAME]
        if unknown:
            raise ProducerError(f"unknown kind {', '.join(unknown)}; kinds are "
                                f"{', '.join(BY_NAME)}")
        if area is not None and area not in self.geography.areas:
            raise ProducerError(f"unknown area {area!r}")
        record = orjson.dumps(asdict(Producer(name, tuple(kinds), area)))
        if not self.client.hsetnx(self.key, name, record):
            raise ProducerError(f"producer {name!r} exists (revoke it first)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.client.hset(self.tokens_key, token_digest(token), name)
        return token

    def all(self) -> list[Producer]:
        """Every producer, by name."""
        records = self.client.hgetall(self.key)
        return sorted((_decode(v) for v in records.values()), key=lambda p: p.name)

    def revoke(self, name: str) -> None:
        """Delete a producer and its token: its next request is refused."""
        if not self.client.hdel(self.key, name):
            raise ProducerError(f"no producer {name!r}")
        gone = [d for d, n in self.client.hgetall(self.tokens_key).items() if n.decode() == name]
        if gone:
            self.client.hdel(self.tokens_key, *gone)

    def authenticate(self, token: str) -> Producer | None:
        """The producer a token belongs to (None for an unknown or revoked one)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        name = self.client.hget(self.tokens_key, token_digest(token))
        if name is None:
            return None
        record = self.client.hget(self.key, name)
        return _decode(record) if record else None


def _decode(record: bytes) -> Producer:
    data = orjson.loads(record)
    return Producer(data["name"], tuple(data.get("kinds") or ()), data.get("area"))
