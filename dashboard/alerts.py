"""Alert focus (告警联动): which news of the live feed is an alert, and who acknowledged it.

An alert is a severity-4 incident reported, an area whose warning level rises to
`CITYBRAIN_ALERT_LEVEL` (red, or orange) or above, or a device going into alarm:
the worker's feed already holds exactly these moments (`dashboard/kinds`), so
`alerts` is a pure function of a view (one computation per view, language and
the acknowledgements of that moment, for every client). At most one alert per
area per `CITYBRAIN_ALERT_THROTTLE_S`; newest first; older ones are left out.
Acknowledgements live in Redis (a sorted set of alert ids by time), shared by
every web process, and are audited by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import redis

from dashboard.i18n import label, t
from dashboard.kinds.risk import RISK_LEVELS
from dashboard.kinds.sensor import UNITS, thresholds
from dashboard.settings import Settings
from dashboard.state.view import CityView
from layers.base import center_zoom

POINT_ZOOM = 14.0  # how close a wall flies to an incident or a device
ACK_KEEP_MS = 2 * 86_400_000  # acknowledgements are remembered this long


@dataclass(frozen=True)
class Alert:
    """One alert as the card shows it (plain text only) and where the map flies."""

    id: str
    kind: str  # incident, risk or sensor
    area: str
    ts: int
    lon: float
    lat: float
    zoom: float
    head: str  # what kind of alert
    what: str
    where: str
    when: str
    why: str  # the reasons, one per line

    def as_json(self) -> dict[str, Any]:
        """The browser's copy."""
        return asdict(self)


def ack_key(settings: Settings) -> str:
    """The sorted set of acknowledged alert ids (score: when, epoch ms)."""
    return settings.state_prefix + "alerts:acked"


def acknowledged(client: redis.Redis, settings: Settings, now_ms: int) -> frozenset[str]:
    """The alert ids acknowledged lately."""
    ids = client.zrangebyscore(ack_key(settings), now_ms - ACK_KEEP_MS, "+inf")
    return frozenset(i.decode() if isinstance(i, bytes) else str(i) for i in ids)


def acknowledge(client: redis.Redis, settings: Settings, alert_id: str, now_ms: int) -> None:
    """Remember an acknowledgement (and forget those older than two days)."""
    pipe = client.pipeline(transaction=False)
    pipe.zadd(ack_key(settings), {alert_id: now_ms})
    pipe.zremrangebyscore(ack_key(settings), "-inf", now_ms - ACK_KEEP_MS)
    pipe.execute()


def _rank(level: object) -> int:
    return RISK_LEVELS.index(level) if level in RISK_LEVELS else 0


def is_alert(item: Mapping[str, Any], settings: Settings) -> bool:
    """Whether a feed item is an alert."""
    kind = item.get("kind")
    if kind == "incident":  # a report merged into a case already alerted is no new alert
        return (item.get("status") == "reported" and str(item.get("severity") or "") == "4"
                and not item.get("case"))
    if kind == "risk":
        return (_rank(item.get("lv")) >= _rank(settings.alert_level)
                and _rank(item.get("lv")) > _rank(item.get("from")))
    if kind == "sensor":
        return item.get("lv") == "alarm"
    return False


def throttled(items: Iterable[Mapping[str, Any]], every_ms: int) -> list[Mapping[str, Any]]:
    """At most one item per area in any `every_ms` (the earliest wins), newest first."""
    kept: list[Mapping[str, Any]] = []
    last: dict[str, int] = {}
    for item in sorted(items, key=lambda i: (int(i.get("ts") or 0), str(i.get("id")))):
        area, ts = str(item.get("area") or ""), int(item.get("ts") or 0)
        if area in last and ts - last[area] < every_ms:
            continue
        last[area] = ts
        kept.append(item)
    kept.reverse()
    return kept


def _where(view: CityView, area: str, lang: str) -> str:
    geography = view.geography
    chain = [a for a in reversed(geography.chain(area)) if a != geography.root_id]
    return " · ".join(geography.name(a, lang) for a in chain) or geography.name(area, lang)


def _number(value: object) -> str:
    try:
        return f"{float(value):g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value or "")


def _card(view: CityView, item: Mapping[str, Any], settings: Settings,
          lang: str) -> tuple[str, str, list[str]]:
    """Head, what and why of an alert (untrusted text stays text: the browser sets it)."""
    kind = item.get("kind")
    if kind == "incident":
        category = label("category", item.get("category") or "unknown", lang)
        return (t("alert_incident", lang), str(item.get("title") or category), [
            f"{t('severity', lang)}: {label('severity', '4', lang)}",
            f"{t('category', lang)}: {category}",
            f"{t('source', lang)}: {label('source', item.get('source') or 'other', lang)}"])
    if kind == "risk":
        risk, model = view.summary(str(item["area"]))["risk"], view.model
        # with an indicator tree: the top categories first, then the top indicators
        categories = [f"{model.name(c['category'], 'risk_category', lang)} "
                      f"+{c['contribution']:.1f}" for c in risk["categories"][:2]
                      ] if model.tree else []
        factors = [f"{model.name(f['indicator'], 'indicator', lang)} {_number(f['value'])} "
                   f"+{f['contribution']:.1f}" for f in risk["factors"][:4 - len(categories) // 2]]
        factors = [*categories, *factors]
        score = "–" if risk["score"] is None else f"{risk['score']:.0f}"
        return (t("alert_risk", lang),
                f"{label('risk_level', item.get('from'), lang)} → "
                f"{label('risk_level', item.get('lv'), lang)}",
                [f"{t('score', lang)}: {score}", *factors])
    device_type = str(item.get("device_type") or "")
    unit = str(item.get("unit") or UNITS.get(device_type, ""))
    limit = thresholds(settings).get(device_type)
    return (t("alert_sensor", lang),
            f"{label('device_type', device_type, lang)} {_number(item.get('value'))} {unit}"
            .strip(),
            [f"{t('alert_device', lang)}: {item.get('device_id') or ''}",
             f"{t('alert_threshold', lang)}: {_number(limit)} {unit}".strip()])


def _place(view: CityView, item: Mapping[str, Any]) -> tuple[float, float, float]:
    geography = view.geography
    area = str(item["area"])
    lon, lat = item.get("lon"), item.get("lat")
    record = view.raw.open_incidents.get(str(item.get("incident_id") or ""))
    if item.get("kind") == "incident" and record is not None:  # its place as located
        lon, lat = record.lon, record.lat
    if item.get("kind") != "risk" and isinstance(lon, int | float) and isinstance(
            lat, int | float):
        return float(lon), float(lat), POINT_ZOOM
    bounds = tuple(float(b) for b in geography.frame.geometry.loc[area].bounds)
    centre, zoom = center_zoom(bounds)
    return centre["lon"], centre["lat"], min(zoom, POINT_ZOOM)


def alerts(view: CityView, settings: Settings, acked: frozenset[str],
           lang: str) -> list[Alert]:
    """The view's current alerts, newest first: throttled per area, recent, not acknowledged."""
    every_ms = int(settings.alert_throttle_s * 1000)
    since = view.now_ms - every_ms
    areas = view.geography.areas
    candidates = [item for item in view.raw.feed
                  if is_alert(item, settings) and (item.get("area") or "") in areas]
    out = []
    for item in throttled(candidates, every_ms):
        ts = int(item.get("ts") or 0)
        if ts < since or str(item.get("id")) in acked:
            continue
        head, what, why = _card(view, item, settings, lang)
        lon, lat, zoom = _place(view, item)
        when = datetime.fromtimestamp(ts / 1000, view.as_of.tzinfo).strftime("%H:%M:%S")
        out.append(Alert(id=str(item.get("id")), kind=str(item.get("kind")),
                         area=str(item["area"]), ts=ts, lon=lon, lat=lat, zoom=zoom,
                         head=head, what=what, where=_where(view, str(item["area"]), lang),
                         when=when, why="\n".join(why)))
    return out
