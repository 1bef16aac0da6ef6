"""Settings: parsing, errors that name the setting, and the README documents every one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dashboard.settings import SETTINGS, Settings, SettingsError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_set001_defaults():
    settings = Settings.load(env={})
    assert settings.stream == "citybrain:events"
    assert settings.dead_stream_key == "citybrain:events:dead"
    assert settings.state_prefix == "citybrain:{shanghai}:"
    assert settings.sla_minutes["manhole"] == 60
    assert settings.risk_thresholds == (25.0, 50.0, 70.0, 85.0)


def test_set002_environment_and_arguments():
    settings = Settings.load(env={"CITYBRAIN_STREAM": "x:events", "CITYBRAIN_CITY": "hangzhou"},
                             batch=7)
    assert settings.stream == "x:events" and settings.batch == 7
    assert settings.state_prefix == "citybrain:{hangzhou}:"


@pytest.mark.parametrize(("name", "value"), [
    ("CITYBRAIN_BATCH", "-1"), ("CITYBRAIN_PORT", "70000"), ("CITYBRAIN_CITY", "paris"),
    ("CITYBRAIN_TZ", "Mars/Olympus"), ("CITYBRAIN_SLA_MINUTES", '{"garbage": -1}'),
    ("CITYBRAIN_RISK_MODEL", '{"x": [1]}'), ("CITYBRAIN_RISK_THRESHOLDS", "50,25,70,85"),
    ("CITYBRAIN_SLA_MINUTES", "not json"),
])
def test_set003_bad_values_fail_naming_the_setting(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.load(env={name: value})


def test_set004_secret_values_are_not_echoed():
    with pytest.raises(SettingsError) as caught:
        Settings.load(env={"REDIS_URL": "http://:hunter2@h:6379/0"})
    assert "REDIS_URL" in str(caught.value) and "hunter2" not in str(caught.value)


def test_set005_overrides_extend_defaults():
    settings = Settings.load(env={"CITYBRAIN_SLA_MINUTES": '{"garbage": 30, "new_cat": 15}',
                                  "CITYBRAIN_RISK_MODEL": '{"fire_hazards": [50, 2]}'})
    assert settings.sla_minutes["garbage"] == 30 and settings.sla_minutes["new_cat"] == 15
    assert settings.sla_minutes["manhole"] == 60
    assert settings.risk_model["fire_hazards"] == (50.0, 2.0)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_set006_readme_documents_every_setting(setting):
    assert f"`{setting.name}`" in README.read_text(), f"README does not document {setting.name}"


def test_set007_typed_fields_match_the_declared_settings_and_hide_secrets():
    names = [f.name for f in dataclasses.fields(Settings)]
    assert names == [s.attr for s in SETTINGS]
    settings = Settings.load(env={"REDIS_URL": "redis://:hunter2@h:6379/0",
                                  "CITYBRAIN_SECRET_KEY": "s3cret-key"})
    assert settings.redis_url == "redis://:hunter2@h:6379/0"
    assert "hunter2" not in repr(settings) and "s3cret-key" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch = 3  # type: ignore[misc]
    assert settings.replace(batch=3).batch == 3 and settings.batch == 500
    with pytest.raises(SettingsError, match="nope"):
        settings.replace(nope=1)
