"""All configuration, read once into one `Settings` object.

Every setting is declared below as a `Setting(name, default, help, parse)`;
the value comes from an explicit argument, then the environment, then the
default. A value that does not parse stops the start with a message naming
the setting. `tests/test_settings.py` fails when the README does not document
a setting.

The default SLA per incident category and the default risk model live here
too (`DEFAULT_SLA_MINUTES`, `DEFAULT_RISK_MODEL`); the settings
`CITYBRAIN_SLA_MINUTES` and `CITYBRAIN_RISK_MODEL` override them with JSON.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dashboard.risk_tree import RiskTree, RiskTreeError, load_risk_tree

# Minutes from `reported` to `closed` before an incident counts as overdue.
DEFAULT_SLA_MINUTES: dict[str, int] = {
    "road_occupation": 240,
    "illegal_construction": 1440,
    "street_drying": 120,
    "out_of_store": 240,
    "manhole": 60,
    "garbage": 240,
    "noise": 120,
    "traffic_accident": 30,
    "fire_hazard": 60,
    "other": 480,
}
FALLBACK_SLA_MINUTES = 480  # for a category that is in neither table

# indicator -> (weight, saturation). An indicator adds
# weight * min(max(value, 0) / saturation, 1) points to the 0-100 score;
# the default weights add up to 100.
DEFAULT_RISK_MODEL: dict[str, tuple[float, float]] = {
    "fire_hazards": (25.0, 5.0),
    "fever_reports": (20.0, 10.0),
    "repeat_complaints": (20.0, 10.0),
    "flood_points": (20.0, 3.0),
    "elderly_living_alone": (15.0, 60.0),
}

DEMO_CITIES = ("shanghai", "hangzhou")
DISTRICT_TOUR = ("districts",)  # CITYBRAIN_WALL_TOUR=districts: the city, then each district

# Who may verify (or reject) an incident the handling side resolved: `other` (any account
# but the one that resolved it), `up` (an account whose scope holds the resolver's, one
# level up or more) or `off` (no verification: "close" closes at once).
VERIFY_RULES = ("other", "up", "off")

# The composite ranking score: weight per rate (docs/closed-loop.md); they need not add up
# to 100: the score is the weighted mean of the rates that exist, times 100.
DEFAULT_RANKING_WEIGHTS: dict[str, float] = {
    "response": 10.0, "closure": 25.0, "on_time": 20.0, "rework": 15.0, "satisfaction": 30.0,
}


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _text(value: str) -> str:
    return value


def _optional(value: str) -> str | None:
    return value or None


def _redis_url(value: str) -> str | None:
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value or None


def _networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False)
                 for item in value.split(",") if item.strip())


def _list(value: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise ValueError("must list at least one item, comma-separated")
    return items


def _flag(value: str) -> bool:
    if value.lower() not in ("0", "1", "true", "false", "yes", "no", ""):
        raise ValueError("must be 1 or 0")
    return value.lower() in ("1", "true", "yes")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or a positive whole number")
    return number


def _batch_size(value: str) -> int:
    number = _positive_int(value)
    if number > 2000:
        raise ValueError("must be at most 2000 (one Lua call applies a batch)")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive number")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be 0 or a positive number")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise ValueError("must be a port number from 1 to 65535")
    return number


def _city(value: str) -> str:
    if value not in DEMO_CITIES:
        raise ValueError(f"must be one of {', '.join(DEMO_CITIES)}")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _lang(value: str) -> str:
    if value not in ("zh-CN", "en"):
        raise ValueError("must be zh-CN or en")
    return value


def _update_mode(value: str) -> str:
    if value not in ("poll", "push"):
        raise ValueError("must be poll or push")
    return value


def _push_url(value: str) -> str:
    """Empty, a path (`/push`, same origin behind a proxy) or an http(s) URL."""
    if value and not value.startswith(("/", "http://", "https://")):
        raise ValueError("must be empty, a path like /push or an http(s):// URL")
    return value.rstrip("/")


def _listen(value: str) -> str | None:
    """`host:port`, or `off` (None)."""
    if value.lower() == "off":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be host:port (e.g. 127.0.0.1:9108) or off")
    _port(port)
    return value


def _log_format(value: str) -> str:
    if value not in ("text", "json"):
        raise ValueError("must be text or json")
    return value


def _stream_key(value: str) -> str:
    if not value or len(value) > 200:
        raise ValueError("must be a Redis key of 1-200 characters")
    return value


def _sla_table(value: str) -> dict[str, int]:
    table = dict(DEFAULT_SLA_MINUTES)
    if value:
        overrides = json.loads(value)
        if not isinstance(overrides, dict):
            raise ValueError('must be a JSON object like {"garbage": 120}')
        for category, minutes in overrides.items():
            if not isinstance(minutes, int | float) or not math.isfinite(minutes) or minutes <= 0:
                raise ValueError(f"minutes for {category!r} must be a positive number")
            table[str(category)] = int(minutes)
    return table


def _risk_model(value: str) -> dict[str, tuple[float, float]]:
    model = dict(DEFAULT_RISK_MODEL)
    if value:
        overrides = json.loads(value)
        if not isinstance(overrides, dict):
            raise ValueError('must be a JSON object like {"fire_hazards": [25, 5]}')
        for indicator, pair in overrides.items():
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or not all(isinstance(x, int | float) and math.isfinite(x) for x in pair)
                or pair[0] < 0
                or pair[1] <= 0
            ):
                raise ValueError(
                    f"{indicator!r} needs [weight >= 0, saturation > 0], got {pair!r}"
                )
            model[str(indicator)] = (float(pair[0]), float(pair[1]))
    return model


def _number_table(value: str) -> dict[str, float]:
    """A JSON object of names to non-negative numbers (overrides of a kind's defaults)."""
    table: dict[str, float] = {}
    if value:
        parsed = json.loads(value)
        if not isinstance(parsed, dict):
            raise ValueError('must be a JSON object like {"name": 30}')
        for name, number in parsed.items():
            if (not isinstance(number, int | float) or isinstance(number, bool)
                    or not math.isfinite(number) or number < 0):
                raise ValueError(f"{name!r} must be a number of at least 0")
            table[str(name)] = float(number)
    return table


def _verify_rule(value: str) -> str:
    if value not in VERIFY_RULES:
        raise ValueError(f"must be one of {', '.join(VERIFY_RULES)}")
    return value


def _ranking_weights(value: str) -> dict[str, float]:
    """`name=weight,...` over the rates of DEFAULT_RANKING_WEIGHTS (those left out keep theirs)."""
    weights = dict(DEFAULT_RANKING_WEIGHTS)
    for item in (part.strip() for part in value.split(",") if part.strip()):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or name not in weights:
            raise ValueError(f"{item!r}: must be name=weight with a name of "
                             f"{', '.join(DEFAULT_RANKING_WEIGHTS)}")
        weight = float(number)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name} must be a number of at least 0")
        weights[name] = weight
    if not any(weights.values()):
        raise ValueError("at least one weight must be above 0")
    return weights


def _rules_path(value: str) -> str | None:
    if value and not os.path.isfile(value):
        raise ValueError(f"no such file: {value}")
    return value or None


def _seconds(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 1:
        raise ValueError("must be a number of seconds, at least 1")
    return number


def _wall_tour(value: str) -> tuple[str, ...]:
    """`districts` (the city, then each district), `off` (none), or area ids."""
    if value == "off":
        return ()
    if value == "districts":
        return DISTRICT_TOUR
    items = _list(value)
    for item in items:
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", item):
            raise ValueError(f"{item[:40]!r} is not an area id (or use districts or off)")
    return items


def _alert_level(value: str) -> str:
    if value not in ("orange", "red"):
        raise ValueError("must be orange or red")
    return value


def _risk_tree(value: str) -> RiskTree | None:
    """The indicator tree of a file (checked: errors name the file and line), or None."""
    if not value:
        return None
    try:
        return load_risk_tree(value)
    except RiskTreeError as exc:
        raise ValueError(str(exc)) from None


def _risk_orders(value: str) -> str | None:
    if value not in ("off", "orange", "red"):
        raise ValueError("must be off, orange or red")
    return None if value == "off" else value


def _thresholds(value: str) -> tuple[float, float, float, float]:
    parts = [float(x) for x in value.split(",")]
    if len(parts) != 4 or parts != sorted(parts) or not all(0 < p <= 100 for p in parts):
        raise ValueError("must be four rising numbers in (0, 100], e.g. 25,50,70,85")
    return (parts[0], parts[1], parts[2], parts[3])


@dataclass(frozen=True)
class Setting:
    """One configuration variable: its environment name, default and help."""

    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = _text
    secret: bool = False

    @property
    def attr(self) -> str:
        """The attribute name on `Settings` (`CITYBRAIN_` dropped, lower case)."""
        return re.sub(r"^CITYBRAIN_", "", self.name).lower()


SETTINGS: tuple[Setting, ...] = (
    Setting("REDIS_URL", "", "Redis to use, e.g. `redis://:pw@host:6379/0` or `rediss://` "
            "for TLS. Empty: `citybrain run` starts an embedded Redis in `CITYBRAIN_DATA_DIR`.",
            _redis_url, secret=True),
    Setting("CITYBRAIN_REDIS_CLUSTER", "0", "1 when `REDIS_URL` names a node of a Redis "
            "Cluster (see \"Scaling out\").", _flag),
    Setting("CITYBRAIN_STREAM", "citybrain:events", "Stream the producers write events to.",
            _stream_key),
    Setting("CITYBRAIN_COMMAND_STREAM", "citybrain:commands", "Stream of officials' actions "
            "(acknowledge, dispatch, note, close, verify, reject, follow_up) for upstream "
            "systems; the worker applies them too (docs/commands.md).", _stream_key),
    Setting("CITYBRAIN_DEAD_STREAM", "", "Dead-letter stream; empty means `<stream>:dead`.",
            _optional),
    Setting("CITYBRAIN_GROUP", "citybrain", "Consumer group the workers share.", _stream_key),
    Setting("CITYBRAIN_CITY", "shanghai", "Demo city whose shipped boundaries are used when "
            "`CITYBRAIN_BOUNDARIES` is empty: `shanghai` or `hangzhou`.", _city),
    Setting("CITYBRAIN_BOUNDARIES", "", "Your own boundary file (any format GeoPandas reads, "
            "any CRS) with columns `area_id`, `name`, `level`, `parent_id`.", _optional),
    Setting("CITYBRAIN_ROADS", "", "Your road network (any format GeoPandas reads, any "
            "CRS): LineStrings with a `segment_id` (the traffic events' segments) and optionally "
            "a `road_class` (`motorway`, `primary`, `residential` ...: the drawn width). Those "
            "segments are drawn as lines coloured by level, the others as dots; a bad file "
            "stops the start. Empty: the demo city's synthetic network (none with "
            "`CITYBRAIN_BOUNDARIES`).", _optional),
    Setting("CITYBRAIN_CONTEXT", "", "The map's context layer (coastline, rivers, ring roads), "
            "drawn as thin lines under the areas: a file GeoPandas reads (any CRS; lines or "
            "polygons, whose outlines are drawn; an `attribution` column is shown on the map), "
            "or `off`. Empty: the demo city's shipped coastline and rivers (OpenStreetMap, "
            "ODbL; GSHHG, LGPL; none with `CITYBRAIN_BOUNDARIES`).", _optional),
    Setting("CITYBRAIN_TZ", "Asia/Shanghai", "The city's time zone: it decides what "
            "\"today\" and \"this hour\" mean.", _timezone),
    Setting("CITYBRAIN_KEY_PREFIX", "citybrain", "First part of every state key; the city "
            "name follows as a Redis Cluster hash tag, e.g. `citybrain:{shanghai}:`.", _stream_key),
    Setting("CITYBRAIN_BATCH", "500", "Entries a worker reads and applies in one batch "
            "(at most 2000).", _batch_size),
    Setting("CITYBRAIN_BLOCK_MS", "1000", "How long a worker waits for new entries per read.",
            _positive_int),
    Setting("CITYBRAIN_CLAIM_IDLE_MS", "60000", "A pending entry idle this long (its worker "
            "died) is claimed by another worker (XPENDING IDLE + XCLAIM).", _positive_int),
    Setting("CITYBRAIN_DEDUP_TTL_S", "172800", "How long an applied `event_id` is remembered, "
            "so that a re-sent copy changes nothing.", _positive_int),
    Setting("CITYBRAIN_RETENTION_S", "172800", "Entries of the events stream older than this "
            "are trimmed by the worker (never ones not yet applied); 0 leaves trimming to the "
            "producers. The look-back window.", _non_negative_int),
    Setting("CITYBRAIN_DEAD_MAXLEN", "100000", "The dead-letter stream keeps at most about "
            "this many entries (and none older than `CITYBRAIN_RETENTION_S`).", _positive_int),
    Setting("CITYBRAIN_CLOSED_KEEP_S", "604800", "How long a closed incident's record is "
            "kept, so that a late event (verified, reopened) still finds it.", _positive_int),
    Setting("CITYBRAIN_FEED_SIZE", "200", "How many recent events the live feed keeps.",
            _positive_int),
    Setting("CITYBRAIN_FREE_FLOW_KMH", "60", "Free-flow speed of a road segment whose events "
            "carry no `free_flow_kmh`.", _positive_float),
    Setting("CITYBRAIN_SLA_MINUTES", "", "JSON object overriding the default SLA minutes per "
            "incident category (`DEFAULT_SLA_MINUTES` in `dashboard/settings.py`).", _sla_table),
    Setting("CITYBRAIN_RISK_MODEL", "", "JSON object overriding the risk model: indicator -> "
            "[weight, saturation] (`DEFAULT_RISK_MODEL` in `dashboard/settings.py`).",
            _risk_model),
    Setting("CITYBRAIN_RISK_THRESHOLDS", "25,50,70,85", "Scores at which the warning level "
            "becomes blue, yellow, orange and red.", _thresholds),
    Setting("CITYBRAIN_RISK_TREE", "", "CSV of the risk indicator tree (风险指标体系; header "
            "`category,indicator,weight,saturation,name_zh,name_en`): categories with their "
            "points and indicators weighted within them; a score is explained by category, "
            "then indicator (docs/risk.md). Replaces `CITYBRAIN_RISK_MODEL` (set only one). "
            "Empty: the flat model (`citybrain run` uses the shipped demo tree for Shanghai).",
            _risk_tree),
    Setting("CITYBRAIN_RISK_ORDERS", "off", "未诉先办: an area whose risk rises into this "
            "warning level (`orange` or `red`) gets a work order to its street (source "
            "`proactive`, category `risk_order`) carrying the indicators behind its score, one "
            "open order per area at a time (docs/closed-loop.md); `off`: none (`citybrain "
            "run` uses `orange` for the demo).", _risk_orders),
    Setting("CITYBRAIN_SENSOR_THRESHOLDS", "", "JSON object overriding the alarm threshold "
            "per device type (defaults: `water_level` 30 cm, `smoke` 1, `manhole_tilt` 15°, "
            "`pm25` 150 µg/m³; `dashboard/kinds/sensor.py`).", _number_table),
    Setting("CITYBRAIN_MAX_FUTURE_S", "86400", "An event whose `ts` is further in the future "
            "than this is dead-lettered as `bad_value`.", _positive_int),
    Setting("CITYBRAIN_STALE_AFTER_S", "30", "With no event applied for this long the data "
            "counts as stale and the screen says so.", _positive_float),
    Setting("CITYBRAIN_CACHE_TTL_S", "0.5", "How long one read of the state serves every "
            "request of a web process: shorter is fresher on the screen, longer reads Redis "
            "and builds views less often (the number of clients does not matter).",
            _positive_float),
    Setting("CITYBRAIN_REPLAY_WAIT_S", "3", "The longest one look-back request (the time "
            "control, `?at=`) waits for the viewer's replay and works on it; then it answers "
            "\"busy, try again\" (HTTP 503 with `Retry-After`; the screen says so) and the "
            "next request continues where it stopped.", _positive_float),
    Setting("CITYBRAIN_REPLAY_SLOTS", "2", "Look-back requests one web process works on at "
            "once (of its 4 request threads); another answers busy at once, so that the live "
            "screen always finds a free thread.", _positive_int),
    Setting("CITYBRAIN_SECRET_KEY", "", "Key that signs session cookies; required once "
            "accounts exist (`python -c 'import secrets; print(secrets.token_hex(32))'`).",
            _optional, secret=True),
    Setting("CITYBRAIN_SESSION_HOURS", "12", "A sign-in lasts this long.", _positive_float),
    Setting("CITYBRAIN_SECURE_COOKIES", "0", "1 to send the session cookie only over HTTPS "
            "(set it behind TLS).", _flag),
    Setting("CITYBRAIN_TRUSTED_PROXIES", "", "Comma-separated addresses (or networks) of the "
            "reverse proxies in front of the web: from them `X-Forwarded-For` gives the "
            "caller's address (audit log, sign-in throttling) and `CITYBRAIN_SSO_HEADER` is "
            "believed. Empty: none.", _networks),
    Setting("CITYBRAIN_SSO_HEADER", "", "Header in which the city's single-sign-on proxy "
            "names the signed-in account (e.g. `X-Remote-User`); believed only from "
            "`CITYBRAIN_TRUSTED_PROXIES`; the account must exist here (`citybrain users "
            "add`), which gives its role and scope. Empty: off.", _optional),
    Setting("CITYBRAIN_DEPARTMENTS", "城管,环卫,交警,消防,市政,街道办,住建,市场监管",
            "Comma-separated departments an incident can be dispatched to.", _list),
    Setting("CITYBRAIN_ROUTING_RULES", "", "CSV of routing rules (分类转办; header "
            "`category,area_id,severity,department,sla_minutes`): the worker dispatches a "
            "new incident without a department to the most specific matching rule's "
            "department, with its SLA (docs/closed-loop.md). Empty: no routing (`citybrain run` "
            "uses the shipped demo rules for Shanghai).", _rules_path),
    Setting("CITYBRAIN_VERIFY", "other", "Who verifies a resolved incident before it "
            "closes: `other` (any account but the one that resolved it), `up` (an account "
            "whose scope holds the resolver's) or `off` (\"close\" closes at once).",
            _verify_rule),
    Setting("CITYBRAIN_FOLLOWUP_REOPENS", "1", "1: a hotline follow-up answered "
            "`dissatisfied` reopens the incident (its SLA clock restarts); 0: it is only "
            "recorded.", _flag),
    Setting("CITYBRAIN_RESPONSE_MINUTES", "30", "The response window: an incident counts "
            "as responded to (响应率) when it is acknowledged (or further handled) within "
            "this many minutes of its report.", _positive_int),
    Setting("CITYBRAIN_MERGE_METRES", "0", "多源合并: reports of one category within this "
            "many metres and `CITYBRAIN_MERGE_MINUTES` of an earlier report become one case "
            "(the summary and the rankings count cases). 0: off (`citybrain run` uses 150 for the "
            "demo city).", _non_negative_int),
    Setting("CITYBRAIN_MERGE_MINUTES", "30", "The time window of merging: a report joins a "
            "case whose first report is at most this many minutes earlier.", _positive_int),
    Setting("CITYBRAIN_HOTSPOT_REPORTS", "0", "未诉先办: this many reports of one category "
            "within `CITYBRAIN_HOTSPOT_METRES` and `CITYBRAIN_HOTSPOT_DAYS` open a proactive "
            "case for the street (one open per street and category). 0: off.",
            _non_negative_int),
    Setting("CITYBRAIN_HOTSPOT_METRES", "200", "The radius of a hotspot.", _positive_int),
    Setting("CITYBRAIN_HOTSPOT_DAYS", "7", "The time window of a hotspot, in days.",
            _positive_int),
    Setting("CITYBRAIN_RANKING_WEIGHTS", "", "Weights of the rankings' composite score, "
            "`name=weight` comma-separated over `response`, `closure`, `on_time`, `rework`, "
            "`satisfaction` (defaults 10, 25, 20, 15, 30; `DEFAULT_RANKING_WEIGHTS`).",
            _ranking_weights),
    Setting("CITYBRAIN_ESCALATE_FACTOR", "2", "An incident overdue by more than this many "
            "times its SLA escalates one level up (street → district → city).",
            _positive_float),
    Setting("CITYBRAIN_WALL_TOUR", "districts", "What a wall screen tours (巡屏) when its URL "
            "names no `?tour=`: `districts` (the city, then each district), comma-separated "
            "area ids, or `off`.", _wall_tour),
    Setting("CITYBRAIN_TOUR_EVERY_S", "30", "Seconds a tour dwells on each area (`?every=` "
            "overrides it per page).", _seconds),
    Setting("CITYBRAIN_TOUR_PAUSE_S", "120", "Any operator input (a click, a key, the wheel) "
            "pauses a tour for this many seconds.", _seconds),
    Setting("CITYBRAIN_ALERT_LEVEL", "red", "Risk warning level an area must rise to for an "
            "alert (告警联动): `red` or `orange`. Severity-4 incidents and sensor alarms always "
            "alert.", _alert_level),
    Setting("CITYBRAIN_ALERT_SHOW_S", "20", "Seconds an alert's card shows (and a wall stays "
            "on it) before the next alert, or the tour or the view before it.", _seconds),
    Setting("CITYBRAIN_ALERT_THROTTLE_S", "600", "At most one alert per area in this many "
            "seconds; alerts older than this are no longer shown.", _seconds),
    Setting("CITYBRAIN_HOST", "127.0.0.1", "Address the web server listens on.", _text),
    Setting("CITYBRAIN_PORT", "8050", "Port the web server listens on.", _port),
    Setting("CITYBRAIN_WEB_WORKERS", "2", "gunicorn worker processes of the web server.",
            _positive_int),
    Setting("CITYBRAIN_DATA_DIR", ".citybrain", "Folder of the embedded Redis's data when "
            "`REDIS_URL` is empty.", _text),
    Setting("CITYBRAIN_AUDIT_DIR", "", "Folder of the durable audit files (one hash-chained "
            "file per process and day, see \"Audit\"). Empty: `audit` in "
            "`CITYBRAIN_DATA_DIR`. Give every process the same folder (a shared one across hosts, "
            "or each host's web shows only its own host's entries).", _text),
    Setting("CITYBRAIN_AUDIT_KEEP_DAYS", "400", "Days of audit files kept; older files are "
            "deleted (China's Cybersecurity Law, art. 21, asks for at least six months).",
            _positive_int),
    Setting("CITYBRAIN_AUDIT_STREAM_MAXLEN", "100000", "The Redis audit stream (a recent "
            "view for other systems) keeps about this many entries; the files keep everything "
            "for `CITYBRAIN_AUDIT_KEEP_DAYS`.", _positive_int),
    Setting("CITYBRAIN_LANG", "zh-CN", "Language of the screen: `zh-CN` or `en` "
            "(`?lang=` overrides it per page).", _lang),
    Setting("CITYBRAIN_UPDATE_MODE", "push", "How the screen gets updates: `push` (the "
            "push process sends each change as it happens; a screen that cannot reach it, or "
            "while it is down, polls and says so) or `poll` (interval callbacks only, one "
            "shared read per tick). See docs/push.md.", _update_mode),
    Setting("CITYBRAIN_PUSH_PORT", "8051", "Port the push process (`citybrain push`) listens "
            "on, at `CITYBRAIN_HOST`.", _port),
    Setting("CITYBRAIN_PUSH_URL", "", "Where browsers reach the push process: empty means "
            "the page's own host at `CITYBRAIN_PUSH_PORT`; a path such as `/push` means the "
            "page's own origin, with a proxy routing `/push/` to the push process unbuffered; "
            "or a full `https://` URL.", _push_url),
    Setting("CITYBRAIN_UPDATE_MS", "1000", "Interval of the screen's update tick (from one "
            "answer to the next request; a tick never leaves while the last one is out).",
            _positive_int),
    Setting("CITYBRAIN_PAGE_START_S", "30", "A page that has not drawn the screen this "
            "long after loading (or at once, when one of its scripts fails to load) reloads "
            "itself, waiting 1, 2, 4 ... 60 s and twice as long for the screen each time: a "
            "wall PC must not stay blank.", _positive_float),
    Setting("CITYBRAIN_HEAP_CEILING_MB", "1024", "A page whose JS heap "
            "(`performance.memory.usedJSHeapSize`, Chromium) passes this many MB reloads "
            "itself, at most once in 10 minutes, and the web logs it (`heap guard: ...`): a "
            "wall runs for days. 0: off.", _non_negative_float),
    Setting("CITYBRAIN_TILE_URL", "", "Optional raster tile URL template for a base map "
            "(`https://host/{z}/{x}/{y}.png`); empty keeps the map fully offline.", _optional),
    Setting("CITYBRAIN_LOG_FORMAT", "text", "Log lines as `text` or `json` (one JSON object "
            "per line with time, level, process, logger, message and, where they apply, "
            "request_id, user, area, route, status, duration_ms, event_id, dead_reason).",
            _log_format),
    Setting("CITYBRAIN_METRICS_TOKEN", "", "Bearer token Prometheus sends for the web's "
            "`/metrics` once accounts exist (without it, or with another, `/metrics` answers "
            "404). Without accounts `/metrics` is open.", _optional, secret=True),
    Setting("CITYBRAIN_METRICS_DIR", "", "Folder where gunicorn's workers keep their metrics "
            "(`PROMETHEUS_MULTIPROC_DIR`; emptied at each start). Empty: a fresh temporary "
            "folder per start.", _optional),
    Setting("CITYBRAIN_WORKER_METRICS", "127.0.0.1:9108", "`host:port` where the ingest "
            "worker serves its Prometheus metrics, or `off`.", _listen),
    Setting("CITYBRAIN_SIM_RATE", "5", "Events per second `citybrain simulate` writes by "
            "default.", _positive_float),
    Setting("CITYBRAIN_INTAKE_MAX_BYTES", "4194304", "Largest body `POST /api/v1/events` "
            "accepts; a larger one is refused whole (413).", _positive_int),
    Setting("CITYBRAIN_INTAKE_RATE", "60000", "Events one producer token may send to "
            "`POST /api/v1/events` per minute; more are refused (429 with `Retry-After`).",
            _positive_int),
)

_BY_ATTR = {s.attr: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The parsed configuration, one typed field per setting; build it with `Settings.load()`.

    The fields match `SETTINGS` one to one (a test checks it); secrets stay out of `repr`.
    """

    redis_url: str | None = field(repr=False)
    redis_cluster: bool
    stream: str
    command_stream: str
    dead_stream: str | None
    group: str
    city: str
    boundaries: str | None
    roads: str | None
    context: str | None
    tz: str
    key_prefix: str
    batch: int
    block_ms: int
    claim_idle_ms: int
    dedup_ttl_s: int
    retention_s: int
    dead_maxlen: int
    closed_keep_s: int
    feed_size: int
    free_flow_kmh: float
    sla_minutes: Mapping[str, int]
    risk_model: Mapping[str, tuple[float, float]]
    risk_thresholds: tuple[float, float, float, float]
    risk_tree: RiskTree | None
    risk_orders: str | None
    sensor_thresholds: Mapping[str, float]
    max_future_s: int
    stale_after_s: float
    cache_ttl_s: float
    replay_wait_s: float
    replay_slots: int
    secret_key: str | None = field(repr=False)
    session_hours: float
    secure_cookies: bool
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    sso_header: str | None
    departments: tuple[str, ...]
    routing_rules: str | None
    verify: str
    followup_reopens: bool
    response_minutes: int
    merge_metres: int
    merge_minutes: int
    hotspot_reports: int
    hotspot_metres: int
    hotspot_days: int
    ranking_weights: Mapping[str, float]
    escalate_factor: float
    wall_tour: tuple[str, ...]
    tour_every_s: float
    tour_pause_s: float
    alert_level: str
    alert_show_s: float
    alert_throttle_s: float
    host: str
    port: int
    web_workers: int
    data_dir: str
    audit_dir: str
    audit_keep_days: int
    audit_stream_maxlen: int
    lang: str
    update_mode: str
    push_port: int
    push_url: str
    update_ms: int
    page_start_s: float
    heap_ceiling_mb: float
    tile_url: str | None
    log_format: str
    metrics_token: str | None = field(repr=False)
    metrics_dir: str | None
    worker_metrics: str | None
    sim_rate: float
    intake_max_bytes: int
    intake_rate: int

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting: keyword argument, then environment, then default."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.attr in overrides:
                values[setting.attr] = overrides.pop(setting.attr)
                continue
            raw = env.get(setting.name, setting.default)
            try:
                values[setting.attr] = setting.parse(raw.strip())
            except (ValueError, TypeError) as exc:
                shown = "(hidden)" if setting.secret else repr(raw)
                raise SettingsError(f"{setting.name}={shown}: {exc}") from exc
        if overrides:
            raise SettingsError(f"unknown settings: {', '.join(sorted(overrides))}")
        if values["risk_tree"] is not None and env.get("CITYBRAIN_RISK_MODEL", "").strip():
            raise SettingsError("CITYBRAIN_RISK_MODEL and CITYBRAIN_RISK_TREE are both set: "
                                "the tree holds the weights; set only one of them")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (already parsed)."""
        unknown = set(changes) - set(_BY_ATTR)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @property
    def dead_stream_key(self) -> str:
        """The dead-letter stream's key."""
        return self.dead_stream or f"{self.stream}:dead"

    @property
    def state_prefix(self) -> str:
        """Prefix of every state key, with the city as a Redis Cluster hash tag."""
        city = (self.boundaries and "custom") or self.city
        return f"{self.key_prefix}:{{{city}}}:"

    @property
    def audit_path(self) -> str:
        """The folder of the audit files."""
        return self.audit_dir or os.path.join(self.data_dir, "audit")

    @property
    def zone(self) -> ZoneInfo:
        """The city's time zone."""
        return ZoneInfo(self.tz)
