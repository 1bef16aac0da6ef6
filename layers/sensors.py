"""Sensors layer: IoT devices as points, those in alarm larger and in the warning colours."""

from __future__ import annotations

from dashboard.i18n import label, t
from dashboard.state.view import CityView
from layers.base import OKABE_ITO, WARNING_COLORS, Layer, Legend, Trace, text

NORMAL = OKABE_ITO["sky"]
ALARM = WARNING_COLORS["red"]
ALARM_RING = WARNING_COLORS["orange"]


def traces(view: CityView, area_id: str, lang: str) -> list[Trace]:
    """Normal devices small, alarmed ones on top with a ring; hover as text."""
    geography = view.geography
    points: dict[bool, tuple[list[float], list[float], list[list[str]]]] = {
        False: ([], [], []), True: ([], [], [])}
    for device_id, reading in sorted(view.raw.of("sensor").items()):
        if reading.lon is None or reading.lat is None or reading.area not in geography.areas:
            continue
        if area_id not in geography.chain(reading.area):
            continue
        lon, lat, hover = points[bool(reading.alarm)]
        lon.append(reading.lon)
        lat.append(reading.lat)
        hover.append([label("device_type", reading.device_type, lang),
                      text(f"{reading.value:g} {reading.unit}".strip()), text(device_id),
                      t("sensor_alarm", lang) if reading.alarm else t("sensor_normal", lang)])
    template = ("<b>%{customdata[0]}</b> %{customdata[1]}<br>%{customdata[2]} · "
                "%{customdata[3]}<extra></extra>")
    (n_lon, n_lat, n_hover), (a_lon, a_lat, a_hover) = points[False], points[True]
    return [
        {"type": "scattermap", "uid": "sensors-points", "mode": "markers",
         "lon": n_lon, "lat": n_lat, "name": t("sensors", lang),
         "marker": {"size": 7, "color": NORMAL, "opacity": 0.8},
         "customdata": n_hover, "hovertemplate": template},
        {"type": "scattermap", "uid": "sensors-alarm-ring", "mode": "markers",
         "lon": a_lon, "lat": a_lat, "hoverinfo": "skip", "name": t("sensor_alarm", lang),
         "marker": {"size": 22, "color": ALARM_RING, "opacity": 0.9}},
        {"type": "scattermap", "uid": "sensors-alarms", "mode": "markers",
         "lon": a_lon, "lat": a_lat, "name": t("sensor_alarm", lang),
         "marker": {"size": 13, "color": ALARM, "opacity": 1},
         "customdata": a_hover, "hovertemplate": template},
    ]


def legend(lang: str) -> Legend:
    """Normal and alarmed devices."""
    return Legend(t("sensors", lang), ((NORMAL, t("sensor_normal", lang)),
                                       (ALARM, t("sensor_alarm", lang))))


LAYER = Layer(
    id="sensors", name={"zh-CN": "物联感知", "en": "IoT sensors"},
    traces=traces, legend=legend, default_visible=True,
    doc="IoT devices (water level, smoke, manhole tilt, PM2.5); alarmed ones in warning colours.",
)
