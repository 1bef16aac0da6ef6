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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import numpy as np
import redis
import shapely

from dashboard.kinds import KINDS
from dashboard.pipeline.coords import gcj02_to_bd09, wgs84_to_gcj02
from dashboard.settings import DEFAULT_RISK_MODEL, DEFAULT_SLA_MINUTES, FALLBACK_SLA_MINUTES

log = logging.getLogger(__name__)

Fields = dict[str, str]

LOCAL_TZ = timezone(timedelta(hours=8))  # Shanghai and Hangzhou; ISO `ts` carry +08:00
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

# category -> (share of reports, department, title templates); {r} a road, {s} a cross road
_CATEGORIES: tuple[tuple[str, float, str, tuple[str, ...]], ...] = (
    ("garbage", 0.22, "环卫", ("{r}{n}号垃圾满溢", "{r}建筑垃圾乱堆放", "{r}垃圾箱周边暴露垃圾",
                              "{r}{n}号弄口垃圾未清运")),
    ("road_occupation", 0.20, "城管", ("{r}占道经营", "{r}{n}号门前占道堆物",
                                       "{r}流动摊贩占道", "{r}共享单车占用人行道")),
    ("out_of_store", 0.11, "城管", ("{r}{n}号出店经营", "{r}餐饮店出店经营",
                                    "{r}{n}号水果店跨门营业")),
    ("street_drying", 0.09, "街道办", ("{r}沿街晾晒", "{r}{n}号护栏晾晒衣物",
                                       "{r}绿化带晾晒被褥")),
    ("noise", 0.09, "街道办", ("{r}夜间施工噪音", "{r}{n}号商铺音响噪音扰民",
                               "{r}广场舞噪音")),
    ("illegal_construction", 0.07, "城管", ("{r}{n}号违章搭建", "{r}小区内乱搭乱建",
                                            "{r}{n}号屋顶违建")),
    ("traffic_accident", 0.07, "交警", ("{r}与{s}路口交通事故", "{r}两车追尾",
                                        "{r}{n}号附近非机动车事故")),
    ("other", 0.08, "街道办", ("{r}路灯不亮", "{r}{n}号市民求助", "{r}行道树倒伏")),
    ("manhole", 0.05, "市政", ("{r}{n}号井盖缺失", "{r}窨井盖破损", "{r}雨水井盖松动")),
    ("fire_hazard", 0.02, "消防", ("{r}{n}号楼道堆物消防隐患", "{r}电瓶车楼道充电",
                                   "{r}{n}号消防通道堵塞")),
)
_SOURCES: tuple[tuple[str, float], ...] = (
    ("hotline", 0.45), ("grid", 0.35), ("video_ai", 0.15), ("sensor", 0.05),
)
_SEVERITY_WEIGHTS = (0.42, 0.41, 0.13, 0.04)  # severity 1..4
_SEVERE_CATEGORIES = frozenset({"traffic_accident", "fire_hazard", "manhole"})
# share of epoch-ms `ts` (the rest ISO-8601 +08:00) per producer
_MS_SHARE: Mapping[str, float] = MappingProxyType({
    "hotline": 0.1, "grid": 0.5, "video_ai": 0.9, "sensor": 0.95, "update": 0.4,
    "traffic": 0.8, "risk": 0.2,
})
_DATUMS = ("gcj02", "wgs84", "bd09")
_DATUM_SHARES = (0.75, 0.2, 0.05)

_ROADS_SHANGHAI = (
    "金桥路", "淮海中路", "南京西路", "漕溪北路", "肇嘉浜路", "衡山路", "天钥桥路", "田林路",
    "虹桥路", "长乐路", "延安西路", "四平路", "大连路", "曹杨路", "武宁路", "张杨路", "世纪大道",
    "龙华中路", "宜山路", "桂林路", "中山南路", "西藏中路", "共和新路", "江场路", "沪太路",
    "七莘路", "莘庄路", "浦东南路", "杨高中路", "东方路", "长寿路", "江宁路", "凯旋路",
)
_ROADS_HANGZHOU = (
    "文三路", "延安路", "庆春路", "凤起路", "西溪路", "江南大道", "莫干山路", "天目山路",
    "体育场路", "解放路", "秋涛路", "滨盛路", "文一西路", "教工路", "古墩路", "萧山路",
    "金城路", "临平大道", "学林街", "余杭塘路",
)
_ROADS_OTHER = ("人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "朝阳路", "幸福路")

# district code -> (weight of its incidents, centrality 0..1 for traffic congestion)
_DISTRICT_PROFILE: Mapping[str, tuple[float, float]] = MappingProxyType({
    "310101": (1.5, 1.0), "310104": (1.5, 0.95), "310105": (1.1, 0.85), "310106": (1.5, 1.0),
    "310107": (1.1, 0.8), "310109": (1.1, 0.85), "310110": (1.2, 0.8), "310112": (1.4, 0.65),
    "310113": (1.0, 0.5), "310114": (0.8, 0.4), "310115": (2.0, 0.75), "310116": (0.4, 0.2),
    "310117": (0.9, 0.4), "310118": (0.6, 0.3), "310120": (0.6, 0.25), "310151": (0.3, 0.1),
    "330102": (1.5, 1.0), "330105": (1.4, 0.95), "330106": (1.4, 0.9), "330108": (1.2, 0.8),
    "330109": (1.2, 0.55), "330110": (1.3, 0.6), "330111": (0.5, 0.3), "330112": (0.4, 0.2),
    "330113": (0.8, 0.45), "330114": (0.7, 0.4), "330122": (0.3, 0.15), "330127": (0.2, 0.1),
    "330182": (0.2, 0.1),
})
_UNKNOWN_PROFILE = (1.0, 0.6)

# risk tiers: (share of the finest areas, score range aimed at)
_RISK_TIERS: tuple[tuple[float, tuple[float, float]], ...] = (
    (0.005, (86.0, 94.0)),  # red
    (0.012, (71.0, 83.0)),  # orange
    (0.025, (52.0, 67.0)),  # yellow
    (0.10, (28.0, 46.0)),  # blue
)
_RISK_NORMAL = (2.0, 19.0)

_DISTRICT_POOL = 256  # points per district
_LEAF_POOL = 3  # points per finest area, for risk events sent by lon/lat


class GeographyLike(Protocol):
    """The part of `dashboard.geography.Geography` the simulator uses."""

    root_id: str
    areas: Mapping[str, Any]
    frame: Any  # GeoDataFrame indexed by area_id with a `geometry` column

    def children(self, area_id: str) -> tuple[str, ...]:
        """Ids of the areas directly inside `area_id`."""
        ...


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


class Point(NamedTuple):
    """A place as sent (strings in `coord`'s datum) and as it is (WGS-84)."""

    lon: str
    lat: str
    coord: str  # "" sends no `coord` field (WGS-84 by default)
    wgs_lon: float
    wgs_lat: float


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


def rush_curve(hour: float) -> float:
    """Traffic load of the local hour, 0 at night, ~1.15 at the evening peak."""
    morning = math.exp(-0.5 * ((hour - 8.2) / 0.9) ** 2)
    evening = 1.05 * math.exp(-0.5 * ((hour - 18.0) / 1.1) ** 2)
    day = 0.32 * math.exp(-0.5 * ((hour - 13.0) / 3.2) ** 2)
    return morning + evening + day


def incident_activity(hour: float) -> float:
    """How many incidents are reported at the local hour, relative to daytime (1.0)."""
    day = 1.0 / (1.0 + math.exp(-2.0 * (hour - 6.5))) / (1.0 + math.exp(2.0 * (hour - 22.0)))
    rush = math.exp(-0.5 * ((hour - 8.0) / 1.0) ** 2) + math.exp(-0.5 * ((hour - 18.0) / 1.0) ** 2)
    return 0.25 + 0.75 * day + 0.4 * rush


def local_hour(epoch_s: float) -> float:
    """Hour of the day (fractional) at +08:00."""
    return ((epoch_s + 8 * 3600) % 86400) / 3600.0


def format_ts(epoch_s: float, as_ms: bool, millis: bool = False) -> str:
    """`ts` as epoch milliseconds or ISO-8601 at +08:00, never later than `epoch_s`."""
    if as_ms:
        return str(int(epoch_s * 1000))
    moment = datetime.fromtimestamp(epoch_s, LOCAL_TZ)
    return moment.isoformat(timespec="milliseconds" if millis else "seconds")


def _ts_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _sent_point(lon: float, lat: float, datum: str) -> tuple[str, str]:
    if datum == "wgs84":
        return f"{lon:.6f}", f"{lat:.6f}"
    glon, glat = wgs84_to_gcj02(lon, lat)
    if datum == "bd09":
        glon, glat = gcj02_to_bd09(glon, glat)
    return f"{glon:.6f}", f"{glat:.6f}"


def sample_points(
    geometries: Sequence[Any], k: int, rng: np.random.Generator, margin: float = 2e-5,
    rounds: int = 30,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to `k` uniform random points inside each geometry, `margin` degrees off its border.

    Vectorised rejection sampling in the bounding boxes. The margin (~2 m) keeps a point
    inside after a datum conversion and rounding to 6 decimals.
    """
    count = len(geometries)
    found: list[list[np.ndarray]] = [[] for _ in range(count)]
    counts = np.zeros(count, int)
    if count == 0:
        return []
    geoms = np.empty(count, dtype=object)
    geoms[:] = list(geometries)
    borders = shapely.boundary(geoms)
    bounds = shapely.bounds(geoms)
    box_area = np.maximum((bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1]), 1e-18)
    fill = np.clip(shapely.area(geoms) / box_area, 0.02, 1.0)
    for _ in range(rounds):
        todo = np.flatnonzero(counts < k)
        if todo.size == 0:
            break
        tries = np.ceil((k - counts[todo]) / fill[todo] * 1.5).astype(int) + 4
        owner = np.repeat(todo, tries)
        x = rng.uniform(bounds[owner, 0], bounds[owner, 2])
        y = rng.uniform(bounds[owner, 1], bounds[owner, 3])
        keep = shapely.contains_xy(geoms[owner], x, y)
        owner, x, y = owner[keep], x[keep], y[keep]
        keep = ~shapely.dwithin(borders[owner], shapely.points(x, y), margin)
        owner, x, y = owner[keep], x[keep], y[keep]
        ids, first = np.unique(owner, return_index=True)  # owner is sorted
        for i, part in zip(ids.tolist(), np.split(np.column_stack((x, y)), first[1:]),
                           strict=True):
            part = part[: k - counts[i]]
            found[i].append(part)
            counts[i] += len(part)
    out = []
    for parts in found:
        pts = np.concatenate(parts) if parts else np.empty((0, 2))
        out.append((pts[:, 0], pts[:, 1]))
    return out


class PointPool:
    """Random points of one area, each sent in its own datum; converted when first used."""

    def __init__(self, lons: np.ndarray, lats: np.ndarray, rng: np.random.Generator) -> None:
        self.lons = lons.tolist()
        self.lats = lats.tolist()
        self.datums = rng.choice(len(_DATUMS), size=len(self.lons), p=_DATUM_SHARES).tolist()
        self.omit = (rng.random(len(self.lons)) < 0.5).tolist()
        self._made: dict[int, Point] = {}

    def __len__(self) -> int:
        return len(self.lons)

    def __getitem__(self, i: int) -> Point:
        point = self._made.get(i)
        if point is None:
            lon, lat, datum = self.lons[i], self.lats[i], _DATUMS[self.datums[i]]
            slon, slat = _sent_point(lon, lat, datum)
            coord = "" if datum == "wgs84" and self.omit[i] else datum
            point = self._made[i] = Point(slon, slat, coord, lon, lat)
        return point


def _finest_areas(geography: GeographyLike) -> list[str]:
    return sorted(
        area_id for area_id in geography.areas
        if area_id != geography.root_id and not geography.children(area_id)
    )


def _districts(geography: GeographyLike) -> list[str]:
    found = sorted(a for a, area in geography.areas.items() if area.level == "district")
    return found or sorted(geography.children(geography.root_id))


def _location(point: Point) -> Fields:
    fields = {"lon": point.lon, "lat": point.lat}
    if point.coord:
        fields["coord"] = point.coord
    return fields


def _resp(fields: Mapping[str, str]) -> str:
    """Fields as RESP bulk strings (lengths in UTF-8 bytes), to splice into a command."""
    return "".join(
        f"${len(k.encode())}\r\n{k}\r\n${len(v.encode())}\r\n{v}\r\n" for k, v in fields.items()
    )


def _read_replies(connection: Any, count: int) -> None:
    """Read `count` replies, raising the first error reply after reading them all."""
    error: redis.ResponseError | None = None
    for _ in range(count):
        try:
            connection.read_response()
        except redis.ResponseError as exc:
            error = error or exc
    if error is not None:
        raise error


def risk_points(model: Mapping[str, tuple[float, float]], values: Mapping[str, float]) -> float:
    """Score (0-100) that the dashboard's model gives these indicator values."""
    total = 0.0
    for indicator, (weight, saturation) in model.items():
        total += weight * min(max(values.get(indicator, 0.0), 0.0) / saturation, 1.0)
    return total


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
        self.retry_delay_s = 0.5  # first wait after a failed write; doubles up to 10 s
        self._rand = random.Random(seed)
        self._np = np.random.default_rng(seed)
        self._run = _base36(int(clock() * 1000))
        self._event_prefix = f"sim-{seed}-{self._run}-"
        self._events = 0
        self._incidents = 0
        self._risk_seeded = False
        self._recent: deque[Fields] = deque(maxlen=64)
        self._active: dict[str, _Incident] = {}
        self._due: list[tuple[float, int, str]] = []
        self._scheduled = 0
        self._roads = self._road_names(geography.root_id)
        self._categories = [c[0] for c in _CATEGORIES]
        self._category_weights = [c[1] for c in _CATEGORIES]
        self._departments = {c[0]: c[2] for c in _CATEGORIES}
        self._templates = {c[0]: c[3] for c in _CATEGORIES}
        self._packed_segments: list[tuple[int, str]] | None = None
        self._packed_places: list[tuple[int, str]] | None = None
        self._packed_risk: list[tuple[int, int, str]] | None = None
        self._flood_open = ""  # a flood incident reported but not yet closed
        self._build_places()
        self._build_segments()
        self._build_risk()
        self._demos = [demo for kind in KINDS if (demo := kind.demo(self)) is not None]

    # ---- set-up ----------------------------------------------------------

    @staticmethod
    def _road_names(root_id: str) -> tuple[str, ...]:
        if root_id.startswith("31"):
            return _ROADS_SHANGHAI
        if root_id.startswith("33"):
            return _ROADS_HANGZHOU
        return _ROADS_OTHER

    def _geometry(self, area_id: str) -> Any:
        return self.geography.frame.geometry.loc[area_id]

    def _build_places(self) -> None:
        self.district_ids = _districts(self.geography)
        geoms = [self._geometry(d) for d in self.district_ids]
        sampled = sample_points(geoms, _DISTRICT_POOL, self._np)
        self.pools: dict[str, PointPool] = {}
        for district, (lons, lats) in zip(self.district_ids, sampled, strict=True):
            if not len(lons):
                raise ValueError(f"no point could be placed inside district {district}")
            self.pools[district] = PointPool(lons, lats, self._np)
        profiles = [_DISTRICT_PROFILE.get(d, _UNKNOWN_PROFILE) for d in self.district_ids]
        self.district_weights = [p[0] for p in profiles]
        self.centrality = {d: p[1] for d, p in zip(self.district_ids, profiles, strict=True)}

    def _build_segments(self) -> None:
        segments: list[Segment] = []
        for district in self.district_ids:
            weight, centrality = _DISTRICT_PROFILE.get(district, _UNKNOWN_PROFILE)
            count = round(20 + 40 * min(max((weight - 0.2) / 1.8, 0.0), 1.0))
            pool = self.pools[district]
            picks = self._np.choice(len(pool), size=count, replace=len(pool) < count)
            for k, pick in enumerate(picks.tolist(), start=1):
                no_free_flow = self._rand.random() < 0.15
                free_flow = (
                    DEFAULT_FREE_FLOW_KMH if no_free_flow else float(self._rand.randrange(40, 81))
                )
                amplitude = (0.25 + 0.8 * centrality) * self._rand.lognormvariate(0.0, 0.18)
                segments.append(Segment(f"SEG-{district}-{k:03d}", district, pool[pick],
                                        free_flow, not no_free_flow, amplitude))
        self.segments = segments

    def _build_risk(self) -> None:
        leaves = _finest_areas(self.geography)
        indicators = list(self.risk_model)
        n, m = len(leaves), len(indicators)
        weights = np.array([self.risk_model[i][0] for i in indicators])
        saturation = np.array([self.risk_model[i][1] for i in indicators])
        # which tier each area aims at: counts by share, placed at random
        scores = self._np.uniform(*_RISK_NORMAL, size=n)
        order = self._np.permutation(n)
        start = 0
        for share, (low, high) in _RISK_TIERS:
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
        as_ms = self._rand.random() < _MS_SHARE[producer]
        text = format_ts(now, as_ms, millis=self._rand.random() < 0.3)
        if not as_ms and _ts_ms(text) <= after_ms:
            text = format_ts(now, True)
        return text

    @staticmethod
    def _place(event: Fields, point: Point) -> None:
        event.update(_location(point))

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
        source = rnd.choices([s for s, _ in _SOURCES], [w for _, w in _SOURCES])[0]
        severity = rnd.choices((1, 2, 3, 4), _SEVERITY_WEIGHTS)[0]
        if category in _SEVERE_CATEGORIES and severity < 4 and rnd.random() < 0.5:
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
                             self._stage_plan(category, now), _ts_ms(ts))
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
        incident.last_ms = _ts_ms(ts)
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
        delay = 1.0 + segment.amplitude * rush_curve(local_hour(now))
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
        ts = self._ts(now, producer if producer in _MS_SHARE else "update")
        return {"event_id": self._new_id(), "kind": kind, "ts": ts}

    def places(self, per_district: int) -> list[tuple[str, Fields]]:
        """Up to `per_district` fixed places of every district: (district, location fields)."""
        return [(district, _location(pool[i])) for district, pool in self.pools.items()
                for i in range(min(per_district, len(pool)))]

    def incident_demo(self) -> DemoOf:
        """New incidents, more by day (their updates come due on simulated time)."""
        return DemoOf(lambda now: _NEW_INCIDENT_WEIGHT * incident_activity(local_hour(now)),
                      self._new_incident)

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

    def flood_commands(self, n: int) -> tuple[bytes, int]:
        """Make `n` valid events with distinct ids as packed XADD commands; (payload, count).

        Made in bulk for benchmarks: numpy draws, per-segment and per-area parts packed
        once, one format per event. Incidents are `reported`, then `closed` right after.
        """
        rng = self._np
        now = self.clock()
        now_ms = int(now * 1000)
        ts_ms, ts_before, ts_iso = str(now_ms), str(now_ms - 1000), format_ts(now, False)
        key = self.stream.encode()
        head = f"$4\r\nXADD\r\n${len(key)}\r\n{self.stream}\r\n$1\r\n*\r\n$8\r\nevent_id\r\n"

        def kind_ts(kind: str, ts: str) -> str:
            return f"$4\r\nkind\r\n${len(kind)}\r\n{kind}\r\n$2\r\nts\r\n${len(ts)}\r\n{ts}\r\n"

        traffic_mid = [kind_ts("traffic", t) + "$9\r\nspeed_kmh\r\n" for t in (ts_ms, ts_iso)]
        risk_mid = [kind_ts("risk", t) + "$5\r\nvalue\r\n" for t in (ts_ms, ts_iso)]
        closed_mid = kind_ts("incident", ts_ms) + "$11\r\nincident_id\r\n"
        reported_mid = kind_ts("incident", ts_before) + "$11\r\nincident_id\r\n"
        closed_end = "$6\r\nstatus\r\n$6\r\nclosed\r\n"
        categories = [
            f"$6\r\nstatus\r\n$8\r\nreported\r\n{_resp({'category': c})}"
            for c in self._categories
        ]
        sources = [_resp({"source": s}) for s, _ in _SOURCES]
        kinds = rng.choice(3, size=n, p=(0.4, 0.35, 0.25)).tolist()
        iso = (rng.random(n) < 0.4).astype(int).tolist()
        first = self._events + 1
        self._events += n
        prefix = self._event_prefix
        # traffic: each segment's reading at `now` with noise, as text of 0.1 km/h steps
        segs = self._flood_segments()
        seg_pick = rng.integers(0, len(segs), size=n)
        free_flow, amplitude = self._segment_arrays()
        load = rush_curve(local_hour(now))
        speed = free_flow[seg_pick] / (1.0 + amplitude[seg_pick] * load)
        speed *= 1.0 + rng.normal(0.0, 0.07, size=n)
        tenths = np.rint(np.clip(speed, 2.0, 199.0) * 10).astype(int).tolist()
        seg_pick = seg_pick.tolist()
        # incidents: category, source, severity and a district point
        weights = np.array(self._category_weights)
        cat_pick = rng.choice(len(weights), size=n, p=weights / weights.sum()).tolist()
        places = self._flood_places()
        place_pick = rng.integers(0, len(places), size=n).tolist()
        src_pick = rng.choice(len(_SOURCES), size=n, p=[w for _, w in _SOURCES]).tolist()
        sev_pick = (rng.choice(4, size=n, p=_SEVERITY_WEIGHTS) + 1).tolist()
        # risk: near each area's level
        risk = self.risk
        cells = self._flood_risk_cells()
        cell_pick = rng.integers(0, max(len(cells), 1), size=n).tolist()
        jitter = rng.normal(0.0, 0.6, size=n).tolist()
        parts: list[str] = []
        add = parts.append
        closing = self._flood_open
        for i in range(n):
            eid = f"{prefix}{first + i}"
            kind = kinds[i]
            if kind == 0 or (kind == 2 and not cells):
                count, fixed = segs[seg_pick[i]]
                t = tenths[i]
                text = f"{t // 10}.{t % 10}"
                add(f"*{11 + count}\r\n{head}${len(eid)}\r\n{eid}\r\n{traffic_mid[iso[i]]}"
                    f"${len(text)}\r\n{text}\r\n{fixed}")
            elif kind == 2:
                leaf, j, fixed = cells[cell_pick[i]]
                value = str(max(0, round(float(risk.target[leaf, j]) + jitter[i] * risk.steps[j])))
                add(f"*15\r\n{head}${len(eid)}\r\n{eid}\r\n{risk_mid[iso[i]]}"
                    f"${len(value)}\r\n{value}\r\n{fixed}")
            elif closing:
                add(f"*13\r\n{head}${len(eid)}\r\n{eid}\r\n{closed_mid}"
                    f"${len(closing)}\r\n{closing}\r\n{closed_end}")
                closing = ""
            else:
                self._incidents += 1
                closing = f"SIM-{self.seed}-{self._incidents}"
                count, located = places[place_pick[i]]
                add(f"*{19 + count}\r\n{head}${len(eid)}\r\n{eid}\r\n{reported_mid}"
                    f"${len(closing)}\r\n{closing}\r\n{categories[cat_pick[i]]}"
                    f"{sources[src_pick[i]]}$8\r\nseverity\r\n$1\r\n{sev_pick[i]}\r\n{located}")
        self._flood_open = closing
        return "".join(parts).encode(), n

    def _segment_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Free-flow speeds and rush amplitudes of the segments, as arrays."""
        return (np.array([s.free_flow_kmh for s in self.segments]),
                np.array([s.amplitude for s in self.segments]))

    def _flood_segments(self) -> list[tuple[int, str]]:
        """Each segment's constant fields, packed: (argument count, RESP text)."""
        if self._packed_segments is None:
            packed = []
            for seg in self.segments:
                fields = {"segment_id": seg.segment_id, **_location(seg.point)}
                if seg.sends_free_flow:
                    fields["free_flow_kmh"] = f"{seg.free_flow_kmh:.0f}"
                packed.append((2 * len(fields), _resp(fields)))
            self._packed_segments = packed
        return self._packed_segments

    def _flood_places(self) -> list[tuple[int, str]]:
        """Up to 64 points of every district, packed: (argument count, RESP text)."""
        if self._packed_places is None:
            packed = []
            for pool in self.pools.values():
                for i in range(min(len(pool), 64)):
                    fields = _location(pool[i])
                    packed.append((2 * len(fields), _resp(fields)))
            self._packed_places = packed
        return self._packed_places

    def _flood_risk_cells(self) -> list[tuple[int, int, str]]:
        """(area index, indicator index, packed area_id and indicator) of every risk cell."""
        if self._packed_risk is None:
            risk = self.risk
            self._packed_risk = [
                (leaf, j, _resp({"indicator": name, "area_id": area_id}))
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


def flood(
    client: redis.Redis, stream: str, geography: GeographyLike, n: int, seed: int = 0,
    batch: int = 2000,
) -> int:
    """Write `n` valid events as fast as possible (pipelined XADD, no MULTI); the count."""
    simulator = Simulator(client, stream, geography, seed)
    pool = client.connection_pool
    connection = pool.get_connection()
    written = pending = 0
    try:
        # make the next batch while Redis works on the previous one, then read its replies
        while written < n or pending:
            payload, count = b"", 0
            if written + pending < n:
                payload, count = simulator.flood_commands(min(batch, n - written - pending))
            _read_replies(connection, pending)
            written, pending = written + pending, 0
            if count:
                connection.send_packed_command([payload])
                pending = count
    except BaseException:
        connection.disconnect()  # replies may be left unread
        raise
    finally:
        pool.release(connection)
    return written


def run_simulation(
    settings: Any, client: redis.Redis, geography: GeographyLike, rate: float,
    duration_s: float | None = None, seed: int | None = None,
    stop: threading.Event | None = None, time_scale: float = DEFAULT_TIME_SCALE,
) -> int:
    """Run the demo producer with the configuration's stream, SLA table and risk model."""
    if seed is None:
        seed = int(time.time()) % 100_000  # a fresh seed: incident ids differ from earlier runs
    simulator = Simulator(
        client, settings.stream, geography, seed, time_scale=time_scale,
        sla_minutes=settings.sla_minutes, risk_model=settings.risk_model,
    )
    log.info("simulate: %d districts, %d segments, %d risk areas, seed %d, %.1f events/s",
             len(simulator.district_ids), len(simulator.segments),
             len(simulator.risk.leaf_ids), seed, rate)
    return simulator.run(rate, duration_s, stop)
