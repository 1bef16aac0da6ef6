"""The batch check's memo of located points: same answers as without it, per geography."""

from __future__ import annotations

from dashboard.geography import load_geography
from dashboard.pipeline.contract import Event, Rejection, parse_entry
from dashboard.pipeline.coords import wgs84_to_gcj02
from dashboard.pipeline.validate import Located, PointMemo, check_batch
from tests.events import SEA_POINT, XUHUI_POINT, incident, now_ms, raw, traffic
from tests.test_geography import feat, square, three_squares, write

DAY_MS = 86_400_000


def batch() -> list[dict[bytes, bytes]]:
    gcj = wgs84_to_gcj02(*XUHUI_POINT)
    return [raw(e) for e in (
        traffic("S1", 30, 60), incident("I1", point=SEA_POINT), traffic("S1", 31, 60),
        traffic("S2", 30, 60, lon=f"{gcj[0]:.7f}", lat=f"{gcj[1]:.7f}", coord="gcj02"),
        incident("I2", "dispatched", point=None, area_id="310104"),
        {"event_id": "x", "kind": "nope"})]


def outcome(results: list[Located | Rejection]) -> list[tuple]:
    return [(r.reason, r.detail) if isinstance(r, Rejection) else
            (r.area, r.event.lon, r.event.lat, r.event.datum) for r in results]


def test_val001_memo_gives_the_same_answers_as_no_memo(geography):
    now = now_ms()
    plain = outcome(check_batch(batch(), geography, now, DAY_MS))
    memo = PointMemo()
    first = outcome(check_batch(batch(), geography, now, DAY_MS, memo))
    again = outcome(check_batch(batch(), geography, now, DAY_MS, memo))  # all from the memo
    assert plain == first == again
    assert plain[0][0] == plain[2][0] == plain[3][0] and "310104" in geography.chain(plain[0][0])
    assert plain[4][0] == "310104"
    assert plain[1][0] == "outside_city" and plain[5][0] == "unknown_kind"
    assert plain[3][3] == "wgs84" and abs(plain[3][1] - XUHUI_POINT[0]) < 1e-6
    assert len(memo.points) == 3  # the three distinct points: sea, S1's, S2's (in GCJ-02)


def test_val002_memo_forgets_a_geography_it_was_not_made_for(geography, tmp_path):
    """A point cached for one city is located again in another (not answered from the memo)."""
    memo = PointMemo()
    event = {"event_id": "v1", "kind": "traffic", "ts": str(now_ms()), "segment_id": "S1",
             "speed_kmh": "30", "lon": "0.5", "lat": "0.5"}
    assert isinstance(check_batch([raw(event)], geography, now_ms(), DAY_MS, memo)[0],
                      Rejection)  # (0.5, 0.5) is far from Shanghai
    tiny = load_geography(write(tmp_path, three_squares()))
    located = check_batch([raw(event)], tiny, now_ms(), DAY_MS, memo)[0]
    assert isinstance(located, Located) and located.area == "d1"
    other = load_geography(write(tmp_path, [feat("c", "city", None, square(0, 0, 3)),
                                            feat("d9", "district", "c", square(0, 0))],
                                 "other.geojson"))
    located = check_batch([raw(event)], other, now_ms(), DAY_MS, memo)[0]
    assert isinstance(located, Located) and located.area == "d9"


def test_val003_memo_stays_bounded(geography):
    memo = PointMemo(size=4)
    for i in range(12):
        lon = f"{XUHUI_POINT[0] + i * 1e-5:.6f}"
        entry = raw(traffic("S1", 30, 60, lon=lon, lat=f"{XUHUI_POINT[1]:.6f}"))
        result = check_batch([entry], geography, now_ms(), DAY_MS, memo)[0]
        assert isinstance(result, Located)
        assert len(memo.points) <= 4
    parsed = parse_entry(entry, now_ms(), DAY_MS)
    assert isinstance(parsed, Event) and (parsed.lon, parsed.lat, "wgs84") in memo.points
