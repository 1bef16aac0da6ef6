"""The demo's sense of time: daily curves and `ts` as producers write it, in the city's zone."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo


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


def local_hour(epoch_s: float, zone: tzinfo) -> float:
    """Hour of the day (fractional) in the city's time zone."""
    moment = datetime.fromtimestamp(epoch_s, zone)
    return moment.hour + moment.minute / 60 + (moment.second + moment.microsecond / 1e6) / 3600


def format_ts(epoch_s: float, as_ms: bool, zone: tzinfo, millis: bool = False) -> str:
    """`ts` as epoch milliseconds or ISO-8601 in the city's zone, never later than `epoch_s`."""
    if as_ms:
        return str(int(epoch_s * 1000))
    moment = datetime.fromtimestamp(epoch_s, zone)
    return moment.isoformat(timespec="milliseconds" if millis else "seconds")


def ts_ms(text: str) -> int:
    """Epoch milliseconds of a `ts` the demo wrote."""
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def base36(number: int) -> str:
    """A non-negative number in base 36 (short run ids)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


