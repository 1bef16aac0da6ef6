"""Server-side sessions: the signed cookie carries only a random id, the session lives in Redis.

One hash per session (`session:<id>`: name, role, scope at issue, issue time) that expires
with the session, and a set of session ids per user (`sessions_of:<name>`), so that
sign-out ends one session and an account change ends all of a user's at once. A session is
opened only if the account is still the one whose password (or token) was just checked, in
one script: a change made meanwhile cannot be outlived by a session opened from before it.
Every key is under the city's prefix (one Redis Cluster hash tag).
"""

from __future__ import annotations

import secrets
import time

import redis

from dashboard.auth.identity import User

SID_BYTES = 32
MAX_SID = 64

# KEYS: users hash, session, the user's session set
# ARGV: name, the account record as checked, id prefix, ttl ms, issue ms, role, scope, sid
_OPEN = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], 'name', ARGV[1], 'role', ARGV[6], 'scope', ARGV[7],
           'iat', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', ARGV[3] .. sid) == 0 then redis.call('SREM', KEYS[3], sid) end
end
redis.call('SADD', KEYS[3], ARGV[8])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 1
"""

# KEYS: a set of session ids; ARGV: id prefix. Ends every session in the set.
_END_ALL = """
local ids = redis.call('SMEMBERS', KEYS[1])
for _, sid in ipairs(ids) do redis.call('DEL', ARGV[1] .. sid) end
redis.call('DEL', KEYS[1])
return #ids
"""


class Sessions:
    """The sessions of one city's accounts."""

    def __init__(self, client: redis.Redis, prefix: str, users_key: str) -> None:
        self.client = client
        self.prefix = prefix
        self.users_key = users_key
        self._open = client.register_script(_OPEN)
        self._end_all = client.register_script(_END_ALL)

    def _key(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def _user_key(self, name: str) -> str:
        return f"{self.prefix}sessions_of:{name}"

    def open(self, user: User, hours: float, account: bytes) -> str | None:
        """A new session id, or None if the account is no longer `account` (the raw record)."""
        sid = secrets.token_urlsafe(SID_BYTES)
        ttl_ms = max(1, int(hours * 3_600_000))
        opened = self._open(
            keys=[self.users_key, self._key(sid), self._user_key(user.name)],
            args=[user.name, account, self._key(""), ttl_ms, int(time.time() * 1000),
                  user.role, user.scope, sid])
        return sid if opened else None

    def user(self, sid: str) -> User | None:
        """Who a live session belongs to (their role and scope at issue), else None."""
        if not sid or len(sid) > MAX_SID:
            return None
        record = self.client.hgetall(self._key(sid))
        if not record:
            return None
        return User(record[b"name"].decode(), record[b"role"].decode(),
                    record[b"scope"].decode())

    def close(self, sid: str) -> None:
        """End one session (sign-out); its id leaves the user's set at their next sign-in."""
        if sid and len(sid) <= MAX_SID:
            self.client.delete(self._key(sid))

    def end_user(self, name: str) -> int:
        """End every session of a user at once; how many ids there were."""
        return int(self._end_all(keys=[self._user_key(name)], args=[self._key("")]))
