"""The open incidents and the registers read by what changed since the last read.

The worker's apply script logs, per version, the open incidents it set or removed and
the register fields it wrote (the stream `<prefix>chg`, its last 1,000 versions).
`ChangeReader` keeps what it read last (the open incidents decoded, the registers as
stored) and catches up with what changed since (one read-only script call,
`read_changes.lua`), so a read at 100,000 open incidents moves and decodes the few that
changed, not the whole hash (22 MB). It reads everything whole at first, when the log
no longer holds a version it missed, or when the state was wiped meanwhile.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import redis

from dashboard.kinds import REGISTERS
from dashboard.kinds.incident import OpenIncident
from dashboard.state.place_sums import group_by_place

# At most this many versions (and changed incidents and fields) are caught up one by one;
# more: a whole read (an HMGET of that many fields costs about what HGETALL does)
MOST_CHANGES = 2000


class ChangeReader:
    """One process's open incidents and registers as last read, and the next read of them.

    Not thread-safe on its own: its owner (`StateCache`) reads under its lock. Whatever
    changed is returned in new mappings: views built from the ones before keep theirs,
    and `decode_records` compares a register with the one it decoded last.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        source = resources.files("dashboard.state").joinpath("read_changes.lua").read_text()
        self.script = client.register_script(source)
        self.prefix = prefix
        self.hashes = [str(kind.register) for kind in REGISTERS]
        self.version = 0
        self.entry_id = b""  # the change log's entry of `version` (b"": not in the log)
        self.incidents = IncidentShards()
        # the same by the area they lie in; a place whose incidents change gets a new dict
        self.by_place: dict[str, dict[str, OpenIncident]] = {}
        self.registers: dict[str, dict[bytes, bytes]] = {h: {} for h in self.hashes}
        # hash -> (the register before the last read, the fields that read wrote)
        self.written_fields: dict[str, tuple[dict[bytes, bytes], list[bytes]]] = {}
        # place -> (its incidents before the last read, the ids that read changed in it)
        self.changed_places: dict[str, tuple[dict[str, OpenIncident], list[str]]] = {}
        self.whole_reads = 0  # reads of the whole hashes, for tests and benchmarks
        self.changed_reads = 0  # reads of the changes only

    def queue(self, pipe: Any) -> None:
        """Add the read to a pipeline; its reply goes to `take`."""
        self.script(keys=[self.prefix + "chg"], client=pipe,
                    args=[self.prefix, self.version, self.entry_id, MOST_CHANGES, *self.hashes])

    def take(self, reply: list[Any]) -> int:
        """Catch up from the script's reply; the version read."""
        version, entry_id, mode = int(reply[0]), reply[1], int(reply[2])
        self.written_fields, self.changed_places = {}, {}
        if mode == 1:
            if reply[3]:
                self.incidents, self.by_place = self.incidents.copy(), dict(self.by_place)
            copied: set[str] = set()  # the places given a new dict by this read
            for raw_id, stored in zip(reply[3], reply[4], strict=True):
                self._set(raw_id, stored, copied)
            for h, fields, values in _triples(reply[5]):
                name_of_hash = h.decode()
                self.written_fields[name_of_hash] = (self.registers[name_of_hash], fields)
                register = self.registers[name_of_hash] = dict(self.registers[name_of_hash])
                for name, value in zip(fields, values, strict=True):
                    if value is not None:  # (register fields are never removed)
                        register[name] = value
            self.changed_reads += 1
        elif mode == 2:
            incidents = {}
            for raw_id, stored in _pairs(reply[3]):
                incident_id = raw_id.decode()
                incidents[incident_id] = OpenIncident.decode(incident_id, stored)
            self.incidents = IncidentShards(incidents)
            self.by_place = group_by_place(incidents)
            whole = reply[4]
            self.registers = {h: {} for h in self.hashes}
            for h, flat in zip(whole[::2], whole[1::2], strict=True):
                self.registers[h.decode()] = dict(_pairs(flat))
            self.whole_reads += 1
        self.version, self.entry_id = version, entry_id
        return version

    def registers_by_kind(self) -> Mapping[str, Mapping[bytes, bytes]]:
        """Each register kind's hash as last read (kind name -> field -> stored bytes)."""
        return {kind.name: self.registers[str(kind.register)] for kind in REGISTERS}

    def written(self) -> dict[str, tuple[Mapping[bytes, bytes], list[bytes]]]:
        """The registers the last read caught up, by kind.

        Each as it was before that read, and the fields written since (`decode_records`
        compares only those).
        """
        return {kind.name: self.written_fields[str(kind.register)] for kind in REGISTERS
                if str(kind.register) in self.written_fields}

    def _set(self, raw_id: bytes, stored: bytes | None, copied: set[str]) -> None:
        incident_id = raw_id.decode()
        before = self.incidents.get(incident_id)
        after = None if stored is None else OpenIncident.decode(incident_id, stored)
        if after is None:
            self.incidents.remove(incident_id)
        else:
            self.incidents.put(after)
        if before is not None and (after is None or after.area != before.area):
            place = self._place(before.area, incident_id, copied)
            del place[incident_id]
            if not place:
                del self.by_place[before.area]
                copied.discard(before.area)
                self.changed_places.pop(before.area, None)
        if after is not None:
            self._place(after.area, incident_id, copied)[incident_id] = after

    def _place(self, area: str, incident_id: str, copied: set[str]) -> dict[str, OpenIncident]:
        """The place's incidents as a dict of this read's own (copied once per read).

        Notes the id as changed in that place (`changed_places`).
        """
        if area not in copied:
            copied.add(area)
            had = self.by_place.get(area)
            self.by_place[area] = dict(had or {})
            if had is not None:
                self.changed_places[area] = (had, [])
        changed = self.changed_places.get(area)
        if changed is not None and incident_id not in changed[1][-1:]:
            changed[1].append(incident_id)
        return self.by_place[area]


class IncidentShards(Mapping[str, OpenIncident]):
    """The open incidents by id, held in shards: a read copies the shards it changes.

    Copying a plain dict of 100,000 incidents for every read that changed a few cost
    more than the rest of the read; a view keeps the mapping it was built from, so a
    changed one must be new (`copy`, then `put` and `remove`, before it is handed out).
    """

    __slots__ = ("copied", "shards")
    SHARDS = 64

    def __init__(self, incidents: Mapping[str, OpenIncident] | None = None) -> None:
        self.shards: list[dict[str, OpenIncident]] = [{} for _ in range(self.SHARDS)]
        for incident_id, incident in (incidents or {}).items():
            self.shards[hash(incident_id) % self.SHARDS][incident_id] = incident
        self.copied: set[int] = set(range(self.SHARDS))  # the shards this one owns

    def copy(self) -> IncidentShards:
        """A new mapping sharing every shard until it changes one."""
        out = IncidentShards()
        out.shards, out.copied = list(self.shards), set()
        return out

    def put(self, incident: OpenIncident) -> None:
        """Set an incident (in its shard's place when it was there)."""
        self._own(incident.incident_id)[incident.incident_id] = incident

    def remove(self, incident_id: str) -> None:
        """Drop an incident if it is there."""
        if incident_id in self:
            del self._own(incident_id)[incident_id]

    def _own(self, incident_id: str) -> dict[str, OpenIncident]:
        at = hash(incident_id) % self.SHARDS
        if at not in self.copied:
            self.copied.add(at)
            self.shards[at] = dict(self.shards[at])
        return self.shards[at]

    def __getitem__(self, incident_id: str) -> OpenIncident:
        return self.shards[hash(incident_id) % self.SHARDS][incident_id]

    def __contains__(self, incident_id: object) -> bool:
        return isinstance(incident_id, str) and incident_id in self.shards[
            hash(incident_id) % self.SHARDS]

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self.shards)

    def __len__(self) -> int:
        return sum(map(len, self.shards))


def _pairs(flat: list[Any]) -> zip[tuple[Any, Any]]:
    return zip(flat[::2], flat[1::2], strict=True)


def _triples(flat: list[Any]) -> zip[tuple[Any, Any, Any]]:
    return zip(flat[::3], flat[1::3], flat[2::3], strict=True)
