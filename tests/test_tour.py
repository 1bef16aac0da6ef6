"""The tour's configuration on the server: which areas, checked against the scope (-k tur)."""

from __future__ import annotations

from dashboard.auth.users import User
from dashboard.screen.tour import config


def test_tur004_a_wall_tours_the_city_then_each_district_by_default(settings, geography):
    wall = User("wall1", "wall", geography.root_id)
    tour = config("", wall, settings, geography, "zh-CN")
    assert tour["areas"] == [geography.root_id, *geography.children(geography.root_id)]
    assert len(tour["areas"]) == 17 and tour["every_ms"] == 30_000 and tour["label"] == "巡屏"
    assert tour["from_url"] is False
    listed = config("", wall, settings.replace(wall_tour=("310104", "310101")), geography, "en")
    assert listed["areas"] == ["310104", "310101"] and listed["label"] == "Tour"
    assert config("", wall, settings.replace(wall_tour=()), geography, "en")["areas"] == []


def test_tur005_a_tour_by_url_keeps_known_areas_in_the_scope_only(settings, geography):
    official = User("xuhui", "district", "310104")
    asked = "?tour=310000,310104,310104-S01,310101,nowhere&every=0.5"
    tour = config(asked, official, settings, geography, "zh-CN")
    assert tour["areas"] == ["310104", "310104-S01"]  # not the city, Huangpu or nowhere
    assert tour["every_ms"] == 2000 and tour["from_url"] is True  # at least 2 s
    assert config("", official, settings, geography, "zh-CN")["areas"] == []  # no default
    city = User("boss", "city", geography.root_id)
    assert config("?tour=310101&every=45", city, settings, geography, "en")["every_ms"] == 45_000
