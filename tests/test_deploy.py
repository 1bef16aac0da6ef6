"""Deployment files: the alert rules pass promtool, the Procfile keeps tokens out of logs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's `prometheus` package; "
    "scripts/system-deps installs it)")


@needs_promtool
def test_dep001_alert_rules_pass_promtool_check():
    done = subprocess.run([PROMTOOL, "check", "rules", "docs/alerts.yml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_dep002_alert_rules_fire_as_their_tests_say():
    done = subprocess.run([PROMTOOL, "test", "rules", "tests/alerts_test.yml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dep003_web_runs_with_the_gunicorn_config_and_no_access_log():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines()
               if line.startswith("web:"))
    assert "--config python:dashboard.gunicorn_conf" in web
    assert "access-logfile" not in web  # it would log ?token= query strings


def test_dep004_readme_deploy_section_names_every_alert():
    readme = (ROOT / "README.md").read_text()
    deploy = readme[readme.index("## Deploying it"):]
    alerts = [line.split(":", 1)[1].strip()
              for line in (ROOT / "docs/alerts.yml").read_text().splitlines()
              if line.strip().startswith("- alert:")]
    assert alerts and all(name in deploy for name in alerts)
