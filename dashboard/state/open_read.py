"""The open incidents read by what changed: a reader holding a version reads only the rest.

The worker's apply script logs, per version, the open incidents it set or removed (the
stream `<prefix>chg`, its last 1,000 versions). `OpenReader` keeps the open incidents it
read last, decoded, and catches up with the incidents changed since (one read-only
script call, `open_changes.lua`), so a read at 100,000 open incidents moves and decodes
the few that changed, not the whole hash (22 MB). It reads the whole hash at first, when
the log no longer holds a version it missed, or when the state was wiped meanwhile.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import redis

from dashboard.kinds.incident import OpenIncident

# At most this many versions (and changed incidents) are caught up one by one; more: a
# whole read (one HMGET of that many fields costs about what HGETALL does)
MOST_CHANGES = 2000


class OpenReader:
    """One process's open incidents as last read, and the next read of them.

    Not thread-safe on its own: its owner (`StateCache`) reads under its lock.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        source = resources.files("dashboard.state").joinpath("open_changes.lua").read_text()
        self.script = client.register_script(source)
        self.prefix = prefix
        self.version = 0
        self.entry_id = b""  # the change log's entry of `version` (b"": not in the log)
        self.incidents: dict[str, OpenIncident] = {}
        self.whole_reads = 0  # reads of the whole hash, for tests and benchmarks
        self.changed_reads = 0  # reads of the changes only

    def queue(self, pipe: Any) -> None:
        """Add the read to a pipeline; its reply goes to `take`."""
        self.script(keys=[self.prefix + "chg"], client=pipe,
                    args=[self.prefix, self.version, self.entry_id, MOST_CHANGES])

    def take(self, reply: list[Any]) -> tuple[int, dict[str, OpenIncident]]:
        """The version and the open incidents at it, from the script's reply.

        The returned mapping is a new one whenever something changed: views built from
        the one before keep theirs.
        """
        version, entry_id, mode = int(reply[0]), reply[1], int(reply[2])
        if mode == 1:
            incidents = dict(self.incidents)
            for raw_id, stored in zip(reply[3], reply[4], strict=True):
                incident_id = raw_id.decode()
                if stored is None:
                    incidents.pop(incident_id, None)
                else:
                    incidents[incident_id] = OpenIncident.from_stored(
                        incident_id, orjson.loads(stored))
            self.changed_reads += 1
        elif mode == 2:
            flat = reply[3]
            incidents = {}
            for raw_id, stored in zip(flat[::2], flat[1::2], strict=True):
                incident_id = raw_id.decode()
                incidents[incident_id] = OpenIncident.from_stored(
                    incident_id, orjson.loads(stored))
            self.whole_reads += 1
        else:
            incidents = self.incidents
        self.version, self.entry_id, self.incidents = version, entry_id, incidents
        return version, incidents
