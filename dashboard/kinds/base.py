"""What every event kind declares, and the field checks the kinds share.

A kind (`dashboard.kinds.KINDS`) says in one module: its fields and their
validation (`parse`), how the worker writes it (`row`: a named record for the
Lua script), the state it keeps and how the read side decodes it into typed
records (`register`, `decode`), what its records add up to per area (`roll_up`,
`block`), how a live-feed line reads (`feed_text`), its labels (`labels`) and
its demo generator (`demo`). Every record the read side keeps has an `area`,
and `CityView.restricted_to` filters all of them by it: no kind can leak
another scope's data to an official.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

if TYPE_CHECKING:
    from dashboard.routing import Rule
    from dashboard.settings import Settings

ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ID_OK = ID.fullmatch
_NUMBER_OK = NUMBER.fullmatch
_isfinite = math.isfinite

Fields = dict[str, str]
Chain = Callable[[str], tuple[str, ...]]  # an area and its parents up to the city


@dataclass(slots=True)
class Event:
    """A valid event, coordinates in WGS-84, time in epoch milliseconds."""

    event_id: str
    kind: str
    ts: int
    lon: float | None
    lat: float | None
    area_id: str | None
    data: dict[str, str]  # the kind's own fields, validated, as strings
    datum: str = "wgs84"  # of lon/lat: wgs84 unless parsed with convert=False


class Invalid(Exception):
    """An entry breaks the contract: a machine code (`dead_reason`) and a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def require(fields: Fields, name: str, why: str = "") -> str:
    """A required field's value; `missing_field` when absent or empty."""
    value = fields.get(name)
    if not value:  # absent or empty
        raise Invalid("missing_field", f"field {name!r} is required{why}")
    return value


def identifier(fields: Fields, name: str, required: bool = True) -> str | None:
    """A field of the id charset (1-64 of A-Za-z0-9._:-)."""
    value = fields.get(name)
    if not value:
        if required:
            raise Invalid("missing_field", f"field {name!r} is required")
        if value is None:
            return None
    if not _ID_OK(value):
        raise Invalid("bad_value", f"{name} must be 1-64 characters of A-Za-z0-9._:-")
    return value


def number(fields: Fields, name: str) -> float | None:
    """An optional finite decimal number."""
    value = fields.get(name)
    if value is None:
        return None
    if not _NUMBER_OK(value):
        raise Invalid("bad_value", f"{name} is not a finite decimal number: {value[:40]!r}")
    result = float(value)
    if not _isfinite(result):
        raise Invalid("bad_value", f"{name} is out of range: {value[:40]!r}")
    return result


def required_number(fields: Fields, name: str) -> float:
    """A required finite decimal number."""
    if not fields.get(name):
        raise Invalid("missing_field", f"field {name!r} is required")
    value = number(fields, name)
    assert value is not None
    return value


@lru_cache(maxsize=65_536)
def _round6(value: float) -> float:
    return round(value, 6)


def round6(value: float) -> float:
    """A coordinate as rows store it: rounded to 6 decimals (about 0.1 m).

    Remembered: fixed sensors, road segments and places send the same points again and
    again, and rounding a float to decimals costs more than looking it up. (Zero is not
    remembered: 0.0 and -0.0 are one key.)
    """
    return _round6(value) if value else round(value, 6)


class RowContext(Protocol):
    """What a kind needs from the worker to write its row."""

    settings: Settings

    def day_hour(self, ts: int) -> tuple[str, str]:
        """The city's day and hour of an event time."""
        ...

    def responsible(self, area: str) -> str:
        """The area answering for what happens in `area`: its street (or district, or city)."""
        ...

    def route(self, category: str, area: str, severity: str) -> Rule | None:
        """The routing rule for a new incident without a department (None: no rule)."""
        ...

    def order_place(self, area: str, ts: int) -> dict[str, Any]:
        """Where a risk work order of `area` goes (its street, place, day, department)."""
        ...

    def case_route(self, category: str, street: str) -> str:
        """Where a hotspot case of a category in a street goes (tab-separated), or ""."""
        ...


class Demo(Protocol):
    """A kind's demo generator: how often it speaks, and its next event."""

    def weight(self, now: float) -> float:
        """Relative share of the demo's events at this moment."""
        ...

    def make(self, now: float) -> Fields:
        """The next event (without `event_id`, which the simulator adds)."""
        ...


class Record(Protocol):
    """A typed record the read side keeps: everything has an area (the scope filter)."""

    area: str


class Kind:
    """One event kind of the registry; subclasses fill in the hooks."""

    name: ClassVar[str]
    doc: ClassVar[str]
    needs_place: ClassVar[bool] = True  # a point or an area_id, whatever `parse` says
    labels: ClassVar[tuple[str, ...]] = ()  # i18n label groups of its codes
    register: ClassVar[str | None] = None  # the state hash of its latest-by-time records
    record: ClassVar[type | None] = None  # the typed record `decode` makes
    block: ClassVar[str | None] = None  # its key in the area summary
    kpi_label: ClassVar[str | None] = None  # i18n text key of its KPI tile, if it has one
    # Levels of a record (`level`) whose entry is news for the live feed (a reading is not).
    feed_levels: ClassVar[tuple[str, ...]] = ()
    key_field: ClassVar[str | None] = None  # the event field its register key is (feed rows)

    def parse(self, fields: Fields) -> tuple[Fields, bool]:
        """The kind's fields validated (as strings), and whether a point is required."""
        raise NotImplementedError

    def row(self, event: Event, area: str, feed: str, ctx: RowContext) -> dict[str, Any]:
        """The named record the Lua script applies (`a` names its applier)."""
        raise NotImplementedError

    def feeds(self, data: Fields, settings: Settings) -> bool:
        """Whether an event of this kind goes to the live feed as it is (readings: no)."""
        return True

    def level(self, data: Fields, settings: Settings) -> str | None:
        """The level of a reading (`feed_levels`: entering which is news), if it has one."""
        return None

    def group(self, event: Event, area: str) -> str | None:
        """The group whose records decide a level together (risk: the area), if any."""
        return None

    def group_model(self, settings: Settings) -> dict[str, Any] | None:
        """How the script scores a group: indicator weights `w`, thresholds `t`, levels `l`."""
        return None

    def feed_text(self, item: Mapping[str, Any], lang: str) -> tuple[str, str, str]:
        """A live-feed line: what, status, title (plain text)."""
        raise NotImplementedError

    def decode(self, field: str, data: dict[str, Any], settings: Settings | None) -> Any:
        """A register's stored value as its typed record."""
        assert self.record is not None
        return self.record(**data)

    def roll_up(self, records: Mapping[str, Any], chain: Chain) -> dict[str, Any]:
        """Per area (and each of its parents): what its records add up to."""
        return {}

    def summary(self, total: Any) -> dict[str, Any]:
        """The kind's block of an area summary, from `roll_up`'s value (None: nothing)."""
        return {}

    def kpi(self, block: Mapping[str, Any]) -> int | float | None:
        """The number on the kind's KPI tile (`kpi_label`), from its summary block."""
        return None

    def demo(self, sim: Any) -> Demo | None:
        """The kind's demo generator for a simulator."""
        return None


class RegisterKind(Kind):
    """A kind whose state is the latest record by event time per key (one generic applier)."""

    def key(self, event: Event, area: str) -> str:
        """The register's field in its hash."""
        raise NotImplementedError

    def value(self, event: Event, area: str, ctx: RowContext) -> dict[str, Any]:
        """The record stored (named fields; `area` always)."""
        raise NotImplementedError

    def row(self, event: Event, area: str, feed: str, ctx: RowContext) -> dict[str, Any]:
        """A register write: hash, field, the record as JSON (with its level, if any).

        The script puts the record into the live feed when it enters one of
        `feed_levels` (or, for a group, when the group's level changes).
        """
        value = self.value(event, area, ctx)
        row: dict[str, Any] = {"a": "reg", "h": self.register, "f": self.key(event, area),
                               "k": self.name}
        level = self.level(event.data, ctx.settings)
        if level is not None:  # the script stores it with the record (`"lv"` first)
            row["lv"] = level
            if level in self.feed_levels:
                row["lf"] = True
                if self.key_field:
                    row["kf"] = self.key_field
        group = self.group(event, area)
        if group is not None:
            row["g"] = group
        row["v"] = orjson.dumps(value).decode()
        return row
