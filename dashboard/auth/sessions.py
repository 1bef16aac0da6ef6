"""Server-side sessions: the signed cookie carries only a random id, the session lives in Redis.

One hash per session (`session:<id>`: name, role, scope at issue, issue time and, for a
wall screen, the digest of the token that opened it) that expires with the session, and a
set of session ids per user (`sessions_of:<name>`) and per wall token
(`sessions_of_token:<digest>`), so that sign-out ends one session, an account change ends
all of a user's at once and revoking a token ends those it opened. A session is opened only
if the account (and the token) is still the one just checked, in one script: a change made
meanwhile cannot be outlived by a session opened from before it.
Every key is under the city's prefix (one Redis Cluster hash tag).
"""

from __future__ import annotations

import secrets
import time

import redis

from dashboard.auth.identity import User

SID_BYTES = 32
MAX_SID = 64

# KEYS: users hash, session, the user's session set, wall-tokens hash, the token's session set
# ARGV: name, the account record as checked, id prefix, ttl ms, issue ms, role, scope, sid,
#       token digest ('' for a password sign-in)
_OPEN = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local sets = {KEYS[3]}
if ARGV[9] ~= '' then
  if redis.call('HGET', KEYS[4], ARGV[9]) ~= ARGV[1] then return 0 end
  sets[2] = KEYS[5]
end
redis.call('HSET', KEYS[2], 'name', ARGV[1], 'role', ARGV[6], 'scope', ARGV[7],
           'iat', ARGV[5], 'token', ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
for _, set in ipairs(sets) do
  for _, sid in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('EXISTS', ARGV[3] .. sid) == 0 then redis.call('SREM', set, sid) end
  end
  redis.call('SADD', set, ARGV[8])
  if redis.call('PTTL', set) < tonumber(ARGV[4]) then redis.call('PEXPIRE', set, ARGV[4]) end
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

    def __init__(self, client: redis.Redis, prefix: str, users_key: str,
                 tokens_key: str) -> None:
        self.client = client
        self.prefix = prefix
        self.users_key = users_key
        self.tokens_key = tokens_key
        self._open = client.register_script(_OPEN)
        self._end_all = client.register_script(_END_ALL)

    def _key(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def _user_key(self, name: str) -> str:
        return f"{self.prefix}sessions_of:{name}"

    def _token_key(self, digest: str) -> str:
        return f"{self.prefix}sessions_of_token:{digest}"

    def open(self, user: User, hours: float, account: bytes,
             token_digest: str = "") -> str | None:
        """A new session id, or None if the account or the token changed since checked.

        `account` is the raw record that was checked; `token_digest` names the wall token
        that opened the session (empty for a password sign-in).
        """
        sid = secrets.token_urlsafe(SID_BYTES)
        ttl_ms = max(1, int(hours * 3_600_000))
        opened = self._open(
            keys=[self.users_key, self._key(sid), self._user_key(user.name), self.tokens_key,
                  self._token_key(token_digest)],
            args=[user.name, account, self._key(""), ttl_ms, int(time.time() * 1000),
                  user.role, user.scope, sid, token_digest])
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

    def end_token(self, digest: str) -> int:
        """End every session a wall token opened; how many ids there were."""
        return int(self._end_all(keys=[self._token_key(digest)], args=[self._key("")]))
