"""The sign-in throttle: at most `FAILURES_ALLOWED` tries per name and per address.

A try is counted before the password is checked, in one script that also refuses it when
either count is over the limit (and then takes it back), so simultaneous guesses cannot
all slip in between a read and a write. A failed try keeps its count and restarts the
window; a sign-in forgets the name's failures and gives the address its try back.
"""

from __future__ import annotations

import redis

FAILURES_ALLOWED = 5
FAILURE_WINDOW_S = 900

# KEYS: the name's count, the address's count; ARGV: take | failed | passed, limit, window s
_SCRIPT = """
local mode, limit, window = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if mode == 'take' then
  local over = false
  for _, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('EXPIRE', key, window) end
    if count > limit then over = true end
  end
  if not over then return 1 end
  for _, key in ipairs(KEYS) do redis.call('DECR', key) end
  return 0
elseif mode == 'failed' then
  for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, window) end
else
  redis.call('DEL', KEYS[1])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
end
return 1
"""


class SignInThrottle:
    """Counts sign-in tries per name and per address, atomically, in Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.prefix = prefix
        self._script = client.register_script(_SCRIPT)

    def _run(self, mode: str, name: str, address: str) -> bool:
        keys = [f"{self.prefix}login_fail:n:{name[:100]}",
                f"{self.prefix}login_fail:a:{address[:100]}"]
        return bool(self._script(keys=keys, args=[mode, FAILURES_ALLOWED, FAILURE_WINDOW_S]))

    def take(self, name: str, address: str) -> bool:
        """Count a try before checking it; False (nothing counted) when over the limit."""
        return self._run("take", name, address)

    def failed(self, name: str, address: str) -> None:
        """The try failed: it stays counted, and the window starts again."""
        self._run("failed", name, address)

    def passed(self, name: str, address: str) -> None:
        """The try signed in: forget the name's failures, give the address its try back."""
        self._run("passed", name, address)
