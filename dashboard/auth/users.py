"""Users, roles and scopes, stored in Redis; passwords hashed with Argon2id."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict

import orjson
import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dashboard.auth.identity import User
from dashboard.auth.sessions import Sessions
from dashboard.geography import Geography

ROLES = ("city", "district", "street", "wall")
_SCOPE_LEVEL = {"district": "district", "street": "street"}
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD = 10
TOUR_EVERY_S = (2.0, 86_400.0)  # a tour's dwell is kept within these


class UserError(ValueError):
    """A user command cannot be done; the message says why."""


class UserStore:
    """The accounts of one city, in two Redis hashes (users, wall-token digests).

    Every change to an account (password, role, scope, removal) ends its sessions.
    """

    def __init__(self, client: redis.Redis, prefix: str, geography: Geography) -> None:
        self.client = client
        self.key = prefix + "users"
        self.tokens_key = prefix + "wall_tokens"
        self.geography = geography
        self.hasher = PasswordHasher()
        self.sessions = Sessions(client, prefix, self.key, self.tokens_key)

    def _scope_for(self, role: str, scope: str | None) -> str:
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        if role in _SCOPE_LEVEL:
            area = self.geography.areas.get(scope or "")
            if area is None or area.level != _SCOPE_LEVEL[role]:
                raise UserError(f"a {role} user needs --scope with a {_SCOPE_LEVEL[role]} id")
            return area.area_id
        if scope and scope != self.geography.root_id:
            raise UserError(f"a {role} user sees the whole city; leave --scope out")
        return self.geography.root_id

    def add(self, name: str, role: str, password: str | None, scope: str | None = None) -> User:
        """Create a user (a wall user gets no password: it signs in by token)."""
        if not _NAME.fullmatch(name):
            raise UserError("name must be 1-64 characters of A-Za-z0-9._@-")
        user = User(name, role, self._scope_for(role, scope))
        record = asdict(user)
        if role != "wall":
            record["hash"] = self._hash(password)
        if not self.client.hsetnx(self.key, name, orjson.dumps(record)):
            raise UserError(f"user {name!r} exists already")
        return user

    def _hash(self, password: str | None) -> str:
        if not password or len(password) < MIN_PASSWORD:
            raise UserError(f"password must have at least {MIN_PASSWORD} characters")
        return self.hasher.hash(password)

    def passwd(self, name: str, password: str) -> None:
        """Set a new password."""
        record = self._record(name)
        if record is None or record["role"] == "wall":
            raise UserError(f"no password user {name!r}")
        record["hash"] = self._hash(password)
        self.client.hset(self.key, name, orjson.dumps(record))
        self.sessions.end_user(name)

    def change(self, name: str, role: str, scope: str | None = None) -> User:
        """Give a user another role or scope (a wall screen stays a wall screen)."""
        record = self._record(name)
        if record is None:
            raise UserError(f"no user {name!r}")
        if (role == "wall") != (record["role"] == "wall"):
            raise UserError("a wall screen cannot become a person or back: remove and add")
        user = User(name, role, self._scope_for(role, scope))
        self.client.hset(self.key, name, orjson.dumps({**record, **asdict(user)}))
        self.sessions.end_user(name)
        return user

    def set_tour(self, name: str, areas: list[str], every_s: float | None = None) -> None:
        """The tour (巡屏) this account's screens show without a `?tour=` (none: cleared).

        Not a change of what it may see (the screen still keeps the areas in its scope):
        its sessions live on and take the tour on their next page load.
        """
        record = self._record(name)
        if record is None:
            raise UserError(f"no user {name!r}")
        unknown = [a for a in areas if a not in self.geography.areas]
        if unknown:
            raise UserError(f"--areas names areas the boundaries do not have: "
                            f"{', '.join(unknown[:5])}")
        if every_s is not None and not TOUR_EVERY_S[0] <= every_s <= TOUR_EVERY_S[1]:
            raise UserError(f"--every must be {TOUR_EVERY_S[0]:g} to {TOUR_EVERY_S[1]:g} seconds")
        record.pop("tour", None)
        if areas:
            record["tour"] = {"areas": areas, "every": every_s}
        self.client.hset(self.key, name, orjson.dumps(record))

    def tour_of(self, name: str) -> tuple[list[str], float | None] | None:
        """The account's own tour: its areas and dwell (None: it has none)."""
        record = self._record(name)
        tour = (record or {}).get("tour")
        return (list(tour["areas"]), tour.get("every")) if tour else None

    def remove(self, name: str) -> None:
        """Delete a user, any wall token of theirs and their sessions."""
        if not self.client.hdel(self.key, name):
            raise UserError(f"no user {name!r}")
        self.revoke_token(name)
        self.sessions.end_user(name)

    def all(self) -> list[User]:
        """Every user, by name."""
        return sorted(
            (User(r["name"], r["role"], r["scope"])
             for r in (orjson.loads(v) for v in self.client.hvals(self.key))),
            key=lambda u: u.name)

    def any(self) -> bool:
        """Whether any account exists (otherwise the cockpit runs in open demo mode)."""
        return bool(self.client.hlen(self.key))

    def _record(self, name: str) -> dict | None:
        account = self._account(name)
        return account[2] if account else None

    def _account(self, name: str) -> tuple[User, bytes, dict] | None:
        """The user, their raw record (what a session is opened against) and its fields."""
        raw = self.client.hget(self.key, name)
        if not raw:
            return None
        record = orjson.loads(raw)
        return User(record["name"], record["role"], record["scope"]), raw, record

    def get(self, name: str) -> User | None:
        """The user of that name, if it still exists."""
        account = self._account(name)
        return account[0] if account else None

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right, else None (same work either way)."""
        checked = self._check(name, password)
        return checked[0] if checked else None

    def _check(self, name: str, password: str) -> tuple[User, bytes] | None:
        account = self._account(name) if _NAME.fullmatch(name or "") else None
        stored = (account[2] if account else {}).get("hash") or _DUMMY_HASH
        try:
            self.hasher.verify(stored, password or "")
        except (VerificationError, InvalidHashError):
            return None
        if account is None or "hash" not in account[2]:
            return None
        return account[0], account[1]

    def sign_in(self, name: str, password: str, hours: float) -> tuple[User, str] | None:
        """The user and a new session id if the password is right (and still is)."""
        checked = self._check(name, password)
        if checked is None:
            return None
        sid = self.sessions.open(checked[0], hours, checked[1])
        return (checked[0], sid) if sid else None

    def issue_token(self, name: str) -> str:
        """A new long random token for a wall user (replacing any old one)."""
        user = self.get(name)
        if user is None or user.role != "wall":
            raise UserError(f"no wall user {name!r}")
        self.revoke_token(name)
        token = secrets.token_urlsafe(32)
        self.client.hset(self.tokens_key, _digest(token), name)
        return token

    def revoke_token(self, name: str) -> int:
        """Revoke a wall user's tokens and end the sessions they opened; how many there were."""
        gone = [d for d, n in self.client.hgetall(self.tokens_key).items() if n.decode() == name]
        if not gone:
            return 0
        revoked = self.client.hdel(self.tokens_key, *gone)
        for digest in gone:
            self.sessions.end_token(digest.decode())
        return revoked

    def token_sign_in(self, token: str, hours: float) -> tuple[User, str] | None:
        """The wall user a valid token belongs to, and a new session id."""
        if not token or len(token) > 200:
            return None
        digest = _digest(token)
        name = self.client.hget(self.tokens_key, digest)
        account = self._account(name.decode()) if name else None
        if account is None:
            return None
        sid = self.sessions.open(account[0], hours, account[1], digest)
        return (account[0], sid) if sid else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_DUMMY_HASH = PasswordHasher().hash("not-a-password-of-anyone")
