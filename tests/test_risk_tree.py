"""The risk indicator tree (issue 12 item 7): categories → indicators (run: -k rsk).

A known tree and known readings through the real stream and worker give known
category and indicator contributions on the read API, to the decimal; a bad
file stops the start naming its line; without a tree nothing changes.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dashboard.app import create_app
from dashboard.pipeline.worker import Worker
from dashboard.risk_tree import DEMO_TREE, RiskTreeError, load_risk_tree
from dashboard.settings import Settings, SettingsError
from tests.events import now_ms, risk

MIN = 60_000
TREE = """category,indicator,weight,saturation,name_zh,name_en
safety,,40,,公共安全,Public safety
safety,theft,3,10,盗窃警情,Theft
safety,fights,1,5,打架斗殴,Fights
fire,,60,,消防安全,Fire safety
fire,fire_hazards,2,4,消防隐患,Fire hazards
fire,blocked_exits,1,2,堵塞通道,Blocked exits
"""
# theft 30 points, fights 10, fire_hazards 40, blocked_exits 20
READINGS = {"theft": 7, "fights": 1.37, "fire_hazards": 2.9, "blocked_exits": 0.7}


def tree_file(tmp_path: Path, text: str = TREE) -> Path:
    path = tmp_path / "tree.csv"
    path.write_text(text, encoding="utf-8")
    return path


def compound(geography) -> str:
    return geography.descendants_at("310104-S01", "compound")[0]


def test_rsk001_demo_tree_seven_categories_36_indicators():
    tree = load_risk_tree(DEMO_TREE)
    assert [c.code for c in tree.categories] == [
        "public_safety", "fire", "traffic", "environment", "infrastructure", "livelihood",
        "petitions"]
    assert len(tree.indicators) == 36
    assert sum(points for points, _ in tree.flat().values()) == pytest.approx(100.0)
    # the flat model's five indicators are in it, so the contract's examples still score
    for name in ("fire_hazards", "fever_reports", "repeat_complaints", "flood_points",
                 "elderly_living_alone"):
        assert name in tree.indicators
    assert tree.name("fire", "zh-CN") == "消防安全" and tree.name("theft_reports", "en") == (
        "Theft reports")


def test_rsk002_points_are_the_category_share(tmp_path):
    tree = load_risk_tree(tree_file(tmp_path))
    assert tree.flat() == {"theft": (30.0, 10.0), "fights": (10.0, 5.0),
                           "fire_hazards": (40.0, 4.0), "blocked_exits": (20.0, 2.0)}


@pytest.mark.parametrize(("text", "line", "words"), [
    ("category,indicator,weight\n", 1, "the header must be"),
    (TREE + "fire,smoke,x,3,,\n", 8, "weight must be a number"),
    (TREE + "fire,smoke,1,0,,\n", 8, "saturation must be a finite number above 0"),
    (TREE + "safety,theft,1,3,,\n", 8, "already on line 3"),
    (TREE + "water,floods,1,3,,\n", 8, "category 'water' has no row of its own"),
    (TREE + "water,,5,,,\n", 8, "category 'water' has no indicators"),
    (TREE.replace("fire,,60", "fire,,70"), 2, "add up to 110, more than 100"),
    (TREE + "fire,bad name,1,3,,\n", 8, "indicator must be 1-64 characters"),
    (TREE + "fire,smoke,1,3\n", 8, "4 columns, expected 6"),
], ids=["header", "weight", "saturation", "duplicate", "orphan", "empty", "sum", "id",
        "columns"])
def test_rsk003_a_bad_tree_names_its_file_and_line(tmp_path, text, line, words):
    path = tree_file(tmp_path, text)
    with pytest.raises(RiskTreeError) as caught:
        load_risk_tree(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert words in str(caught.value)


def test_rsk004_the_setting_stops_the_start_naming_setting_file_and_line(tmp_path):
    path = tree_file(tmp_path, TREE + "fire,smoke,1,-2,,\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(env={"CITYBRAIN_RISK_TREE": str(path)})
    assert f"CITYBRAIN_RISK_TREE={str(path)!r}: {path}:8: saturation" in str(caught.value)
    with pytest.raises(SettingsError, match="set only one"):
        Settings.load(env={"CITYBRAIN_RISK_TREE": str(tree_file(tmp_path)),
                           "CITYBRAIN_RISK_MODEL": '{"theft": [10, 1]}'})


def _run(settings, client, geography, events):
    for event in events:
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="rsk").work(burst=True)
    return create_app(settings).server.test_client()


def test_rsk005_score_explained_by_category_then_indicator(settings, client, geography,
                                                           tmp_path):
    tree_settings = settings.replace(risk_tree=load_risk_tree(tree_file(tmp_path)))
    area = compound(geography)
    t = now_ms() - 5 * MIN
    api = _run(tree_settings, client, geography,
               [risk(area, name, value, ts=t) for name, value in READINGS.items()])
    body = api.get(f"/api/v1/summary?area_id={area}").get_json()["risk"]
    assert body["score"] == 59.7 and body["level"] == "yellow"  # 21 + 2.74 + 29 + 7
    assert body["categories"] == [
        {"category": "fire", "contribution": 36.0, "indicators": [
            {"indicator": "fire_hazards", "value": 2.9, "contribution": 29.0},
            {"indicator": "blocked_exits", "value": 0.7, "contribution": 7.0}]},
        {"category": "safety", "contribution": 23.74, "indicators": [
            {"indicator": "theft", "value": 7.0, "contribution": 21.0},
            {"indicator": "fights", "value": 1.37, "contribution": 2.74}]},
    ]
    assert [f["indicator"] for f in body["factors"]] == [
        "fire_hazards", "theft", "blocked_exits", "fights"]
    # The street above it: the mean over its scored areas (just this one), same breakdown
    street = api.get("/api/v1/areas/310104-S01").get_json()
    assert street["risk"]["score"] == 59.7
    assert [(c["category"], c["contribution"]) for c in street["risk"]["categories"]] == [
        ("fire", 36.0), ("safety", 23.74)]


def test_rsk006_worker_scores_the_tree_as_the_view_does(settings, client, geography,
                                                        tmp_path):
    """The level change in the live feed carries the script's score: the view's score."""
    tree_settings = settings.replace(risk_tree=load_risk_tree(tree_file(tmp_path)))
    area = compound(geography)
    t = now_ms() - 5 * MIN
    order = ("fights", "blocked_exits", "theft", "fire_hazards")  # 2.74, 9.74, 30.74, 59.74
    _run(tree_settings, client, geography,
         [risk(area, name, READINGS[name], ts=t + i) for i, name in enumerate(order)])
    feed = client.lrange(settings.state_prefix + "feed", 0, -1)
    last = next(c for c in map(orjson.loads, feed) if c.get("lv"))  # newest first
    assert (last["from"], last["lv"], last["score"]) == ("blue", "yellow", 59.74)


def test_rsk007_no_tree_is_the_one_category_case(settings, client, geography):
    area = compound(geography)
    api = _run(settings, client, geography, [
        risk(area, "fire_hazards", 5, ts=now_ms() - MIN), risk(area, "fever_reports", 5)])
    body = api.get(f"/api/v1/summary?area_id={area}").get_json()["risk"]
    assert body["score"] == 35.0
    assert body["factors"] == [
        {"indicator": "fire_hazards", "value": 5.0, "contribution": 25.0},
        {"indicator": "fever_reports", "value": 5.0, "contribution": 10.0}]
    assert body["categories"] == [{"category": "risk", "contribution": 35.0,
                                   "indicators": body["factors"]}]


def test_rsk009_alert_card_names_categories_then_indicators(settings, client, geography,
                                                            tmp_path):
    from tests.test_alerts import current

    tree_settings = settings.replace(risk_tree=load_risk_tree(tree_file(tmp_path)),
                                     alert_level="orange")
    area = compound(geography)
    t = now_ms() - 5 * MIN
    readings = {**READINGS, "theft": 10, "fights": 5}  # 30 + 10 + 29 + 7 = 76: orange
    _run(tree_settings, client, geography,
         [risk(area, name, value, ts=t) for name, value in readings.items()])
    card = [a for a in current(tree_settings, client, geography, lang="zh-CN")
            if a.kind == "risk"]
    assert card[0].why.splitlines() == ["评分: 76", "公共安全 +40.0", "消防安全 +36.0",
                                        "盗窃警情 10 +30.0", "消防隐患 2.9 +29.0",
                                        "打架斗殴 5 +10.0"]


def test_rsk010_demo_feed_speaks_the_demo_tree(geography):
    """The demo producer sends the tree's indicators; some of its areas reach orange."""
    from collections import Counter, defaultdict

    from dashboard.demo.simulator import Simulator
    from dashboard.kinds.risk import RiskModel

    tree = load_risk_tree(DEMO_TREE)
    model = RiskModel(tree.flat(), (25.0, 50.0, 70.0, 85.0), tree)
    sim = Simulator(None, "s", geography, seed=4, clock=lambda: 1795305600.0 + 36000,
                    risk_model=model.weights)
    values: defaultdict[str, dict[str, float]] = defaultdict(dict)
    for event in sim.initial_risk():  # an area_id, or a point in the area
        area = event.get("area_id") or geography.locate(float(event["lon"]),
                                                        float(event["lat"])).item()
        values[area][event["indicator"]] = float(event["value"])
    assert {name for v in values.values() for name in v} == set(tree.indicators)
    levels = Counter(model.level(model.score(v)) for v in values.values())
    assert {"normal", "blue", "yellow"} <= set(levels), levels
    assert levels["orange"] + levels["red"] >= 5, levels  # the demo's work orders
    top = max(values.values(), key=model.score)
    assert len(model.categories(model.factors(top))) == 7  # explained by all categories


def test_rsk011_feed_names_the_indicator_by_the_tree(settings, client, geography, tmp_path):
    from dashboard.screen.frame import compute
    from dashboard.state.store import StateCache

    tree_settings = settings.replace(risk_tree=load_risk_tree(tree_file(tmp_path)))
    area = compound(geography)
    t = now_ms() - 5 * MIN
    order = ("fights", "blocked_exits", "theft", "fire_hazards")  # fire_hazards: → yellow
    _run(tree_settings, client, geography,
         [risk(area, name, READINGS[name], ts=t + i) for i, name in enumerate(order)])
    frame = compute(StateCache(tree_settings, client, geography).view(), area, "zh-CN")
    assert [(r["what"], r["status"], r["title"]) for r in frame.feed] == [
        ("风险", "蓝色预警 → 黄色预警", "60 · 消防隐患"),
        ("风险", "正常 → 蓝色预警", "31 · 盗窃警情")]


def test_rsk012_citybrain_check_reads_the_tree_or_names_its_line(tmp_path):
    import subprocess

    from tests.test_cli import citybrain, clean_env

    good = citybrain("check", env=clean_env(CITYBRAIN_RISK_TREE=str(DEMO_TREE)),
                     stdout=subprocess.PIPE, text=True)
    assert "risk tree ok; 7 categories, 36 indicators" in good.communicate(timeout=120)[0]
    assert good.returncode == 0
    broken = tree_file(tmp_path, TREE + "fire,smoke,1,0,,\n")
    bad = citybrain("worker", env=clean_env(CITYBRAIN_RISK_TREE=str(broken),
                                            REDIS_URL="redis://x"),
                    stderr=subprocess.PIPE, text=True)
    err = bad.communicate(timeout=120)[1]
    assert bad.returncode == 2 and f"CITYBRAIN_RISK_TREE={str(broken)!r}: {broken}:8:" in err
