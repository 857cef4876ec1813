"""The consultation retention: under 3 years `medchat doctor` warns (never fails) and the
services log one warning line at start-up; the older setting name still counts."""

from __future__ import annotations

import logging

import pytest

from services.cli.doctor import check_retention
from services.core.settings import CONSULTATION_MIN_DAYS, PlatformSettings


def test_doctor_warns_under_three_years() -> None:
    (short,) = check_retention({"MEDCHAT_CONSULTATION_RETENTION_DAYS": "365"})
    assert short.status == "warn" and "3 years" in short.detail
    (enough,) = check_retention({"MEDCHAT_CONSULTATION_RETENTION_DAYS": str(CONSULTATION_MIN_DAYS)})
    assert enough.status == "ok"
    (unset,) = check_retention({})
    assert unset.status == "ok" and "kept" in unset.detail
    (older,) = check_retention({"MEDCHAT_RETENTION_DAYS": "30"})
    assert older.status == "warn"
    # The new name wins over the old one.
    both = {"MEDCHAT_CONSULTATION_RETENTION_DAYS": "2000", "MEDCHAT_RETENTION_DAYS": "30"}
    assert check_retention(both)[0].status == "ok"
    (bad,) = check_retention({"MEDCHAT_RETENTION_DAYS": "3y"})
    assert bad.status == "fail"


def test_settings_read_both_names_and_warn_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDCHAT_RETENTION_DAYS", "1001")  # a number no other test uses
    with caplog.at_level(logging.WARNING, logger="services.core.settings"):
        old_name = PlatformSettings()
        PlatformSettings()
    assert old_name.consultation_days == 1001
    warnings = [r.getMessage() for r in caplog.records if "1001 days" in r.getMessage()]
    assert len(warnings) == 1 and "3 years" in warnings[0]
    monkeypatch.setenv("MEDCHAT_CONSULTATION_RETENTION_DAYS", "1200")
    assert PlatformSettings().consultation_days == 1200
    assert PlatformSettings(consultation_retention_days=None).consultation_days == 1001
