"""The tour's configuration on the server: which areas, checked against the scope (-k tur)."""

from __future__ import annotations

import pytest

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


def test_tur006_an_account_has_its_own_tour_the_url_still_first(settings, geography, client):
    from dashboard.auth.users import UserError, UserStore

    store = UserStore(client, settings.state_prefix, geography)
    store.add("wall2", "wall", None)
    store.add("xuhui", "district", "a long enough password", "310104")
    assert store.tour_of("wall2") is None
    store.set_tour("wall2", ["310104", "310101"], 12)
    wall = User("wall2", "wall", geography.root_id)
    tour = config("", wall, settings, geography, "zh-CN", store.tour_of("wall2"))
    assert tour["areas"] == ["310104", "310101"] and tour["every_ms"] == 12_000
    assert tour["from_url"] is False
    by_url = config("?tour=310105", wall, settings, geography, "zh-CN", store.tour_of("wall2"))
    assert by_url["areas"] == ["310105"] and by_url["every_ms"] == 30_000
    # an official's own tour keeps to their scope, like a URL's
    store.set_tour("xuhui", ["310000", "310104", "310104-S01"])
    official = User("xuhui", "district", "310104")
    own = config("", official, settings, geography, "en", store.tour_of("xuhui"))
    assert own["areas"] == ["310104", "310104-S01"] and own["every_ms"] == 30_000
    with pytest.raises(UserError, match="nowhere"):
        store.set_tour("wall2", ["310104", "nowhere"])
    with pytest.raises(UserError, match="--every"):
        store.set_tour("wall2", ["310104"], 0.5)
    with pytest.raises(UserError, match="no user"):
        store.set_tour("ghost", ["310104"])
    store.set_tour("wall2", [])  # cleared: the wall's default tour again
    assert store.tour_of("wall2") is None
    assert len(config("", wall, settings, geography, "en", None)["areas"]) == 17
