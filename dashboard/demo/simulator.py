"""The demo producer behind `citybrain simulate`: realistic events of every kind.

It writes what the city's producers would write, following the event contract:
incidents (work orders) that move through their life over simulated time,
speed readings of fixed road segments that follow a daily curve, and risk
indicators of the finest areas that drift slowly around a per-area level.

Incident lifecycles run on simulated time (`time_scale` simulated minutes per
real second) so the demo looks alive within minutes, while every event's `ts`
is the real wall-clock time at which it is made. Each `reported` event
therefore carries `sla_minutes` scaled the same way, so that "overdue" on the
screen means what it would mean at real speed (~10-15% of incidents).
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import redis

from dashboard.demo.catalogue import (
    CATEGORIES,
    DISTRICT_PROFILE,
    MS_SHARE,
    RISK_NORMAL,
    RISK_TIERS,
    SEVERE_CATEGORIES,
    SEVERITY_WEIGHTS,
    SOURCES,
    UNKNOWN_PROFILE,
    roads,
)
from dashboard.demo.clock import base36, format_ts, incident_activity, local_hour, rush_curve, ts_ms
from dashboard.demo.places import (
    Fields,
    GeographyLike,
    Point,
    PointPool,
    districts,
    finest_areas,
    location,
    sample_points,
)
from dashboard.kinds import KINDS
from dashboard.kinds.risk import RiskModel
from dashboard.settings import DEFAULT_RISK_MODEL, DEFAULT_SLA_MINUTES, FALLBACK_SLA_MINUTES

log = logging.getLogger(__name__)

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")  # the demo cities'; the CLI passes CITYBRAIN_TZ
DEFAULT_TIME_SCALE = 1.0  # simulated minutes per real second: a 4-hour SLA lasts 4 minutes
DEFAULT_FREE_FLOW_KMH = 60.0  # the configuration's default; segments without a free flow use it

# kind weights of a slot that is not a due incident update; with ~6.1 events per
# incident this gives ~40% traffic, ~35% incident, ~25% risk events overall
_TRAFFIC_WEIGHT = 40.0
_NEW_INCIDENT_WEIGHT = 5.72
_RISK_WEIGHT = 25.0
_DUPLICATE_SHARE = 0.01
_REOPEN_SHARE = 0.03
# closing time / SLA is log-normal: median 0.6, P(> 1) ~ 12%
_CLOSE_MEDIAN = 0.6
_CLOSE_SIGMA = 0.435

_DISTRICT_POOL = 256  # points per district
_LEAF_POOL = 3  # points per finest area, for risk events sent by lon/lat


@dataclass(frozen=True)
class DemoOf:
    """A kind's demo generator made of two functions (see `dashboard.kinds.base.Demo`)."""

    weigh: Callable[[float], float]
    maker: Callable[[float], Fields]

    def weight(self, now: float) -> float:
        """Relative share of the demo's events at this moment."""
        return self.weigh(now)

    def make(self, now: float) -> Fields:
        """The next event."""
        return self.maker(now)


@dataclass(frozen=True)
class Segment:
    """A road segment with a detector that reports its speed."""

    segment_id: str
    district_id: str
    point: Point
    free_flow_kmh: float
    sends_free_flow: bool
    amplitude: float  # delay index above 1 at the peak of the daily curve


@dataclass
class _Incident:
    incident_id: str
    category: str
    department: str
    point: Point
    stages: deque[tuple[str, float]]  # (status, due at real time), in order
    last_ms: int = 0


@dataclass
class _Risk:
    leaf_ids: list[str]
    indicators: list[str]
    steps: list[int]  # random-walk step per indicator
    target: np.ndarray  # (leaves, indicators), float
    value: np.ndarray  # (leaves, indicators), int
    points: list[PointPool] = field(default_factory=list)


def risk_points(model: Mapping[str, tuple[float, float]], values: Mapping[str, float]) -> float:
    """Score (0-100) that the dashboard's model gives these indicator values."""
    return RiskModel(model, (25.0, 50.0, 70.0, 85.0)).score(values)


def demo_segment_ids(district_id: str) -> list[str]:
    """The demo's road segments of a district: 20 to 60, more in busier districts."""
    weight, _ = DISTRICT_PROFILE.get(district_id, UNKNOWN_PROFILE)
    count = round(20 + 40 * min(max((weight - 0.2) / 1.8, 0.0), 1.0))
    return [f"SEG-{district_id}-{k:03d}" for k in range(1, count + 1)]


class Simulator:
    """Makes the demo's events and writes them to the stream.

    Each event takes one slot: a due incident update if there is one, else a traffic
    reading, a new incident or a risk drift. Keep `time_scale` (simulated minutes per
    second) at most about the rate (events per second): updates wait for a free slot, and
    under heavier compression that wait makes more incidents overdue than the ~12% aimed at.
    """

    def __init__(
        self,
        client: redis.Redis | None,
        stream: str,
        geography: GeographyLike,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        time_scale: float = DEFAULT_TIME_SCALE,
        sla_minutes: Mapping[str, float] | None = None,
        risk_model: Mapping[str, tuple[float, float]] | None = None,
        maxlen: int | None = None,
        zone: tzinfo = DEFAULT_ZONE,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.client = client
        self.stream = stream
        self.geography = geography
        self.seed = seed
        self.clock = clock
        self.time_scale = time_scale
        self.sla_minutes = dict(sla_minutes or DEFAULT_SLA_MINUTES)
        self.risk_model = dict(risk_model or DEFAULT_RISK_MODEL)
        self.maxlen = maxlen
        self.zone = zone  # the city's: local hours and ISO `ts` offsets
        self.retry_delay_s = 0.5  # first wait after a failed write; doubles up to 10 s
        self._rand = random.Random(seed)
        self._np = np.random.default_rng(seed)
        self._run = base36(int(clock() * 1000))
        self._event_prefix = f"sim-{seed}-{self._run}-"
        self._events = 0
        self._incidents = 0
        self._risk_seeded = False
        self._recent: deque[Fields] = deque(maxlen=64)
        self._active: dict[str, _Incident] = {}
        self._due: list[tuple[float, int, str]] = []
        self._scheduled = 0
        self._roads = roads(geography.root_id)
        self._categories = [c[0] for c in CATEGORIES]
        self._category_weights = [c[1] for c in CATEGORIES]
        self._departments = {c[0]: c[2] for c in CATEGORIES}
        self._templates = {c[0]: c[3] for c in CATEGORIES}
        self._packed_segments: list[Fields] | None = None
        self._packed_places: list[Fields] | None = None
        self._packed_risk: list[tuple[int, int, Fields]] | None = None
        self._flood_open = ""  # a flood incident reported but not yet closed
        self._build_places()
        self._build_segments()
        self._build_risk()
        self._demos = [demo for kind in KINDS if (demo := kind.demo(self)) is not None]

    # ---- set-up ----------------------------------------------------------

    def _geometry(self, area_id: str) -> Any:
        return self.geography.frame.geometry.loc[area_id]

    def _build_places(self) -> None:
        self.district_ids = districts(self.geography)
        geoms = [self._geometry(d) for d in self.district_ids]
        sampled = sample_points(geoms, _DISTRICT_POOL, self._np)
        self.pools: dict[str, PointPool] = {}
        for district, (lons, lats) in zip(self.district_ids, sampled, strict=True):
            if not len(lons):
                raise ValueError(f"no point could be placed inside district {district}")
            self.pools[district] = PointPool(lons, lats, self._np)
        profiles = [DISTRICT_PROFILE.get(d, UNKNOWN_PROFILE) for d in self.district_ids]
        self.district_weights = [p[0] for p in profiles]
        self.centrality = {d: p[1] for d, p in zip(self.district_ids, profiles, strict=True)}

    def _build_segments(self) -> None:
        segments: list[Segment] = []
        # On the demo's road network (if the geography has one) a segment sits on its road.
        on_roads = getattr(getattr(self.geography, "roads", None), "midpoints", {})
        for district in self.district_ids:
            _, centrality = DISTRICT_PROFILE.get(district, UNKNOWN_PROFILE)
            ids = demo_segment_ids(district)
            pool = self.pools[district]
            picks = self._np.choice(len(pool), size=len(ids), replace=len(pool) < len(ids))
            for segment_id, pick in zip(ids, picks.tolist(), strict=True):
                no_free_flow = self._rand.random() < 0.15
                free_flow = (
                    DEFAULT_FREE_FLOW_KMH if no_free_flow else float(self._rand.randrange(40, 81))
                )
                amplitude = (0.25 + 0.8 * centrality) * self._rand.lognormvariate(0.0, 0.18)
                point = pool[pick]
                if segment_id in on_roads:
                    lon, lat = on_roads[segment_id]
                    point = Point(f"{lon:.6f}", f"{lat:.6f}", "", lon, lat)
                segments.append(Segment(segment_id, district, point, free_flow,
                                        not no_free_flow, amplitude))
        self.segments = segments

    def _build_risk(self) -> None:
        leaves = finest_areas(self.geography)
        indicators = list(self.risk_model)
        n, m = len(leaves), len(indicators)
        weights = np.array([self.risk_model[i][0] for i in indicators])
        saturation = np.array([self.risk_model[i][1] for i in indicators])
        # which tier each area aims at: counts by share, placed at random
        scores = self._np.uniform(*RISK_NORMAL, size=n)
        order = self._np.permutation(n)
        start = 0
        for share, (low, high) in RISK_TIERS:
            count = round(share * n)
            if share >= 0.025 and n >= 10:
                count = max(count, 1)
            chosen = order[start:start + count]
            scores[chosen] = self._np.uniform(low, high, size=len(chosen))
            start += count
        # split each score over the indicators (one or two usually dominate), capped at weight
        shares = self._np.dirichlet(np.full(m, 0.7), size=n) if m else np.zeros((n, 0))
        points = shares * scores[:, None]
        for _ in range(m):
            over = np.maximum(points - weights, 0.0)
            points = np.minimum(points, weights)
            room = weights - points
            spill = over.sum(axis=1, keepdims=True)
            room_total = np.maximum(room.sum(axis=1, keepdims=True), 1e-9)
            points = points + spill * room / room_total
        target = points / np.maximum(weights, 1e-9) * saturation
        steps = [max(1, math.ceil(s / 20)) for s in saturation.tolist()]
        value = np.rint(target).astype(int)
        self.risk = _Risk(leaves, indicators, steps, target, value)
        small = [a for a in leaves if a not in self.pools]
        sampled = sample_points([self._geometry(a) for a in small], _LEAF_POOL, self._np,
                                rounds=10)
        pools = {a: PointPool(lons, lats, self._np)
                 for a, (lons, lats) in zip(small, sampled, strict=True)}
        self.risk.points = [self.pools.get(a) or pools[a] for a in leaves]

    # ---- events ----------------------------------------------------------

    def _new_id(self) -> str:
        self._events += 1
        return f"{self._event_prefix}{self._events}"

    def _ts(self, now: float, producer: str, after_ms: int = 0) -> str:
        as_ms = self._rand.random() < MS_SHARE[producer]
        text = format_ts(now, as_ms, self.zone, millis=self._rand.random() < 0.3)
        if not as_ms and ts_ms(text) <= after_ms:
            text = format_ts(now, True, self.zone)
        return text

    @staticmethod
    def _place(event: Fields, point: Point) -> None:
        event.update(location(point))

    def _sla_real_minutes(self, category: str) -> float:
        sla = self.sla_minutes.get(category, FALLBACK_SLA_MINUTES)
        return sla / (60.0 * self.time_scale)

    def _title(self, category: str) -> str:
        template = self._rand.choice(self._templates[category])
        road, cross = self._rand.sample(self._roads, 2)
        return template.format(r=road, s=cross, n=self._rand.randrange(1, 999))

    def _stage_plan(self, category: str, start: float) -> deque[tuple[str, float]]:
        """Plan the statuses after `reported` with their due times in real seconds."""
        rnd = self._rand
        sla = self.sla_minutes.get(category, FALLBACK_SLA_MINUTES)
        total = sla * rnd.lognormvariate(math.log(_CLOSE_MEDIAN), _CLOSE_SIGMA)
        parts = [rnd.gammavariate(a, 1.0) for a in (1.5, 2.5, 6.0, 2.0, 1.2)]
        scale = total / sum(parts)
        minutes = [p * scale for p in parts]
        statuses = ["dispatched", "in_progress", "resolved", "verified", "closed"]
        if rnd.random() < _REOPEN_SHARE:
            again = [m * rnd.uniform(0.3, 0.7) for m in minutes[:3]]
            statuses[3:3] = ["reopened", "dispatched", "in_progress", "resolved"]
            minutes[3:3] = [minutes[3] * 0.5, *again]
        plan: deque[tuple[str, float]] = deque()
        due = start
        for status, m in zip(statuses, minutes, strict=True):
            due += m / self.time_scale
            plan.append((status, due))
        return plan

    def _schedule(self, incident: _Incident) -> None:
        if incident.stages:
            self._scheduled += 1
            heapq.heappush(self._due, (incident.stages[0][1], self._scheduled,
                                       incident.incident_id))

    def _new_incident(self, now: float) -> Fields:
        rnd = self._rand
        self._incidents += 1
        incident_id = f"SIM-{self.seed}-{self._incidents}"
        category = rnd.choices(self._categories, self._category_weights)[0]
        district = rnd.choices(self.district_ids, self.district_weights)[0]
        pool = self.pools[district]
        point = pool[rnd.randrange(len(pool))]
        source = rnd.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0]
        severity = rnd.choices((1, 2, 3, 4), SEVERITY_WEIGHTS)[0]
        if category in SEVERE_CATEGORIES and severity < 4 and rnd.random() < 0.5:
            severity += 1
        ts = self._ts(now, source)
        event: Fields = {
            "event_id": self._new_id(), "kind": "incident", "ts": ts,
            "incident_id": incident_id, "status": "reported", "category": category,
            "source": source, "severity": str(severity), "title": self._title(category),
            "sla_minutes": format(self._sla_real_minutes(category), ".6g"),
        }
        self._place(event, point)
        incident = _Incident(incident_id, category, self._departments[category], point,
                             self._stage_plan(category, now), ts_ms(ts))
        self._active[incident_id] = incident
        self._schedule(incident)
        return event

    def _next_update(self, now: float) -> Fields | None:
        """Make the incident update that is due, if one can be sent at `now`."""
        if not self._due or self._due[0][0] > now:
            return None
        now_ms = int(now * 1000)
        incident = self._active[self._due[0][2]]
        if now_ms <= incident.last_ms:
            return None  # same millisecond as its previous event: next time
        heapq.heappop(self._due)
        status, _ = incident.stages.popleft()
        rnd = self._rand
        ts = self._ts(now, "update", incident.last_ms)
        incident.last_ms = ts_ms(ts)
        event: Fields = {
            "event_id": self._new_id(), "kind": "incident", "ts": ts,
            "incident_id": incident.incident_id, "status": status,
        }
        if status == "dispatched" or rnd.random() < 0.25:
            event["department"] = incident.department
        if status == "reopened" and rnd.random() < 0.5:
            event["source"] = "hotline"
        if rnd.random() < 0.2:
            self._place(event, incident.point)
        if incident.stages:
            self._schedule(incident)
        else:
            del self._active[incident.incident_id]
        return event

    def speed_at(self, segment: Segment, now: float, noise: float = 0.0) -> float:
        """Speed (km/h) that a segment's detector reads at `now`."""
        delay = 1.0 + segment.amplitude * rush_curve(local_hour(now, self.zone))
        speed = segment.free_flow_kmh / delay * (1.0 + noise)
        return min(max(speed, 2.0), segment.free_flow_kmh * 1.12, 199.0)

    def _traffic(self, now: float) -> Fields:
        segment = self._rand.choice(self.segments)
        speed = self.speed_at(segment, now, self._rand.gauss(0.0, 0.07))
        event: Fields = {
            "event_id": self._new_id(), "kind": "traffic", "ts": self._ts(now, "traffic"),
            "segment_id": segment.segment_id, "speed_kmh": f"{speed:.1f}",
        }
        if segment.sends_free_flow:
            event["free_flow_kmh"] = f"{segment.free_flow_kmh:.0f}"
        self._place(event, segment.point)
        return event

    def _risk_event(self, now: float, leaf: int, indicator: int) -> Fields:
        risk = self.risk
        event: Fields = {
            "event_id": self._new_id(), "kind": "risk", "ts": self._ts(now, "risk"),
            "indicator": risk.indicators[indicator],
            "value": str(int(risk.value[leaf, indicator])),
        }
        points = risk.points[leaf]
        if len(points) and self._rand.random() < 0.15:
            self._place(event, points[self._rand.randrange(len(points))])
        else:
            event["area_id"] = risk.leaf_ids[leaf]
        if self._rand.random() < 0.3:
            event["v"] = "1"
        return event

    def _risk_drift(self, now: float) -> Fields:
        risk = self.risk
        leaf = self._rand.randrange(len(risk.leaf_ids))
        j = self._rand.randrange(len(risk.indicators))
        step = risk.steps[j]
        current = int(risk.value[leaf, j])
        pull = (float(risk.target[leaf, j]) - current) / step
        up = min(max(0.2 + 0.25 * pull, 0.02), 0.7)
        down = min(max(0.2 - 0.25 * pull, 0.02), 0.7)
        draw = self._rand.random()
        if draw < up:
            current += step
        elif draw < up + down:
            current = max(current - step, 0)
        risk.value[leaf, j] = current
        return self._risk_event(now, leaf, j)

    def initial_risk(self) -> list[Fields]:
        """One event per indicator of every finest area: the risk map's starting point."""
        now = self.clock()
        risk = self.risk
        return [
            self._risk_event(now, leaf, j)
            for leaf in range(len(risk.leaf_ids)) for j in range(len(risk.indicators))
        ]

    def _one(self) -> Fields:
        now = self.clock()
        rnd = self._rand
        if self._recent and rnd.random() < _DUPLICATE_SHARE:
            return dict(rnd.choice(self._recent))  # a producer's retry: same event_id
        event = self._next_update(now)
        if event is None:  # one kind of the registry, by its demo's weight now
            weights = [demo.weight(now) for demo in self._demos]
            event = rnd.choices(self._demos, weights)[0].make(now)
        self._recent.append(event)
        return dict(event)

    # ---- what a kind's demo generator builds on (dashboard/kinds) ----------

    @property
    def rand(self) -> random.Random:
        """The simulator's seeded random source (a demo draws from it: deterministic)."""
        return self._rand

    def new_event(self, kind: str, now: float, producer: str) -> Fields:
        """The fields every event has: a fresh event_id, the kind, `ts` as a producer sends it."""
        ts = self._ts(now, producer if producer in MS_SHARE else "update")
        return {"event_id": self._new_id(), "kind": kind, "ts": ts}

    def places(self, per_district: int) -> list[tuple[str, Fields]]:
        """Up to `per_district` fixed places of every district: (district, location fields)."""
        return [(district, location(pool[i])) for district, pool in self.pools.items()
                for i in range(min(per_district, len(pool)))]

    def incident_demo(self) -> DemoOf:
        """New incidents, more by day (their updates come due on simulated time)."""
        def weight(now: float) -> float:
            return _NEW_INCIDENT_WEIGHT * incident_activity(local_hour(now, self.zone))

        return DemoOf(weight, self._new_incident)

    def traffic_demo(self) -> DemoOf:
        """Speed readings of the fixed segments."""
        return DemoOf(lambda now: _TRAFFIC_WEIGHT, self._traffic)

    def risk_demo(self) -> DemoOf:
        """Risk indicators drifting around each finest area's level."""
        has_risk = bool(self.risk.leaf_ids and self.risk.indicators)
        return DemoOf(lambda now: _RISK_WEIGHT if has_risk else 0.0, self._risk_drift)

    def step(self, n: int) -> list[Fields]:
        """Make the next `n` events; deterministic for a seed and clock."""
        return [self._one() for _ in range(n)]

    @property
    def open_incidents(self) -> int:
        """Incidents reported and not yet closed."""
        return len(self._active)

    # ---- bulk events for benchmarks --------------------------------------

    def flood_events(self, n: int) -> list[Fields]:
        """Make `n` valid events with distinct ids in bulk, for benchmarks (numpy draws).

        Incidents are `reported`, then `closed` right after.
        """
        rng = self._np
        now = self.clock()
        now_ms = int(now * 1000)
        stamps = (str(now_ms), format_ts(now, False, self.zone))
        before = str(now_ms - 1000)
        kinds = rng.choice(3, size=n, p=(0.4, 0.35, 0.25)).tolist()
        iso = (rng.random(n) < 0.4).astype(int).tolist()
        first = self._events + 1
        self._events += n
        prefix = self._event_prefix
        # traffic: each segment's reading at `now` with noise, as text of 0.1 km/h steps
        segs = self._flood_segments()
        seg_pick = rng.integers(0, len(segs), size=n)
        free_flow, amplitude = self._segment_arrays()
        load = rush_curve(local_hour(now, self.zone))
        speed = free_flow[seg_pick] / (1.0 + amplitude[seg_pick] * load)
        speed *= 1.0 + rng.normal(0.0, 0.07, size=n)
        tenths = np.rint(np.clip(speed, 2.0, 199.0) * 10).astype(int).tolist()
        seg_pick = seg_pick.tolist()
        # incidents: category, source, severity and a district point
        weights = np.array(self._category_weights)
        cat_pick = rng.choice(len(weights), size=n, p=weights / weights.sum()).tolist()
        places = self._flood_places()
        place_pick = rng.integers(0, len(places), size=n).tolist()
        src_pick = rng.choice(len(SOURCES), size=n, p=[w for _, w in SOURCES]).tolist()
        sev_pick = (rng.choice(4, size=n, p=SEVERITY_WEIGHTS) + 1).tolist()
        # risk: near each area's level
        risk = self.risk
        cells = self._flood_risk_cells()
        cell_pick = rng.integers(0, max(len(cells), 1), size=n).tolist()
        jitter = rng.normal(0.0, 0.6, size=n).tolist()
        out: list[Fields] = []
        closing = self._flood_open
        for i in range(n):
            eid = f"{prefix}{first + i}"
            kind = kinds[i]
            if kind == 0 or (kind == 2 and not cells):
                t = tenths[i]
                out.append({"event_id": eid, "kind": "traffic", "ts": stamps[iso[i]],
                            "speed_kmh": f"{t // 10}.{t % 10}", **segs[seg_pick[i]]})
            elif kind == 2:
                leaf, j, fixed = cells[cell_pick[i]]
                value = max(0, round(float(risk.target[leaf, j]) + jitter[i] * risk.steps[j]))
                out.append({"event_id": eid, "kind": "risk", "ts": stamps[iso[i]],
                            "value": str(value), **fixed})
            elif closing:
                out.append({"event_id": eid, "kind": "incident", "ts": stamps[0],
                            "incident_id": closing, "status": "closed"})
                closing = ""
            else:
                self._incidents += 1
                closing = f"SIM-{self.seed}-{self._incidents}"
                out.append({"event_id": eid, "kind": "incident", "ts": before,
                            "incident_id": closing, "status": "reported",
                            "category": self._categories[cat_pick[i]],
                            "source": SOURCES[src_pick[i]][0], "severity": str(sev_pick[i]),
                            **places[place_pick[i]]})
        self._flood_open = closing
        return out

    def _segment_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Free-flow speeds and rush amplitudes of the segments, as arrays."""
        return (np.array([s.free_flow_kmh for s in self.segments]),
                np.array([s.amplitude for s in self.segments]))

    def _flood_segments(self) -> list[Fields]:
        """Each segment's constant fields."""
        if self._packed_segments is None:
            packed = []
            for seg in self.segments:
                fields = {"segment_id": seg.segment_id, **location(seg.point)}
                if seg.sends_free_flow:
                    fields["free_flow_kmh"] = f"{seg.free_flow_kmh:.0f}"
                packed.append(fields)
            self._packed_segments = packed
        return self._packed_segments

    def _flood_places(self) -> list[Fields]:
        """Up to 64 points of every district, as location fields."""
        if self._packed_places is None:
            self._packed_places = [location(pool[i]) for pool in self.pools.values()
                                   for i in range(min(len(pool), 64))]
        return self._packed_places

    def _flood_risk_cells(self) -> list[tuple[int, int, Fields]]:
        """(area index, indicator index, its indicator and area_id) of every risk cell."""
        if self._packed_risk is None:
            risk = self.risk
            self._packed_risk = [
                (leaf, j, {"indicator": name, "area_id": area_id})
                for leaf, area_id in enumerate(risk.leaf_ids)
                for j, name in enumerate(risk.indicators)
            ]
        return self._packed_risk

    # ---- writing ---------------------------------------------------------

    def write(self, events: Iterable[Fields]) -> int:
        """XADD the events in one pipeline (no MULTI); the number written."""
        if self.client is None:
            raise RuntimeError("this simulator has no Redis client")
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for event in events:
            if self.maxlen is None:
                pipe.xadd(self.stream, event)  # type: ignore[arg-type]
            else:
                pipe.xadd(self.stream, event, maxlen=self.maxlen,  # type: ignore[arg-type]
                          approximate=True)
            count += 1
        if count:
            pipe.execute()
        return count

    def _write_retrying(self, events: list[Fields], stop: threading.Event) -> bool:
        """Write, waiting out a Redis outage with backoff; False if stopped first."""
        delay = self.retry_delay_s
        while True:
            try:
                self.write(events)
                return True
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("simulate: Redis unavailable (%s); retrying in %.1f s", exc, delay)
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)

    def seed_risk(self, stop: threading.Event | None = None, batch: int = 1000) -> int:
        """Write the initial value of every indicator of every finest area; the count."""
        stop = stop or threading.Event()
        events = self.initial_risk()
        written = 0
        for start in range(0, len(events), batch):
            chunk = events[start:start + batch]
            if not self._write_retrying(chunk, stop):
                break
            written += len(chunk)
        self._risk_seeded = True
        return written

    def run(
        self, rate: float, duration_s: float | None = None, stop: threading.Event | None = None,
        *, initial_risk: bool = True,
    ) -> int:
        """Write events at `rate` per second until `duration_s` or `stop`; the count written."""
        if not rate > 0:
            raise ValueError("rate must be positive")
        stop = stop or threading.Event()
        written = 0
        if initial_risk and not self._risk_seeded:
            written += self.seed_risk(stop)
        limit = None if duration_s is None else max(math.ceil(duration_s * rate - 1e-9), 0)
        batch = max(1, int(rate * 0.05)) if rate > 20 else 1
        backlog_cap = max(int(rate), 10)
        start = time.monotonic()
        sent = 0  # paced events, due at start + k / rate for k = 0, 1, ...
        while not stop.is_set() and (limit is None or sent < limit):
            now = time.monotonic()
            due = int((now - start) * rate) + 1 - sent
            if due > backlog_cap:  # behind after an outage: skip, do not burst
                start = now - sent / rate
                due = 1
            if limit is not None:
                due = min(due, limit - sent)
            if due < batch and (limit is None or sent + due < limit):
                wake = start + (sent + batch - 1) / rate
                stop.wait(max(wake - now, 0.001))
                continue
            events = self.step(due)
            if not self._write_retrying(events, stop):
                break
            sent += due
            written += due
        return written


def run_simulation(
    settings: Any, client: redis.Redis, geography: GeographyLike, rate: float,
    duration_s: float | None = None, seed: int | None = None,
    stop: threading.Event | None = None, time_scale: float = DEFAULT_TIME_SCALE,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run the demo producer with the configuration's stream, SLA table and risk model."""
    if seed is None:
        seed = int(clock()) % 100_000  # a fresh seed: incident ids differ from earlier runs
    simulator = Simulator(
        client, settings.stream, geography, seed, clock=clock, time_scale=time_scale,
        sla_minutes=settings.sla_minutes, risk_model=RiskModel.from_settings(settings).weights,
        zone=settings.zone,
    )
    log.info("simulate: %d districts, %d segments, %d risk areas, seed %d, %.1f events/s",
             len(simulator.district_ids), len(simulator.segments),
             len(simulator.risk.leaf_ids), seed, rate)
    return simulator.run(rate, duration_s, stop)
