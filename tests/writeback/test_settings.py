"""The `[writeback]` section: defaults, environment overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_write_back_is_off_by_default_with_the_contract_flags() -> None:
    settings = load_settings(EXAMPLE, {})
    assert settings.writeback.enabled is False
    assert settings.writeback.flags == ("TOO_MANY_PRIORITIES", "NO_REFERENT", "STALE_PRIORITY")


def test_the_environment_turns_it_on_and_picks_flags() -> None:
    settings = load_settings(
        EXAMPLE,
        {"SYNCD_WRITEBACK_ENABLED": "true", "SYNCD_WRITEBACK_FLAGS": "no_referent,STALE_PRIORITY"},
    )
    assert settings.writeback.enabled is True
    assert settings.writeback.flags == ("NO_REFERENT", "STALE_PRIORITY")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            "NO_DASHBOARD",
            "writeback.flags (from SYNCD_WRITEBACK_FLAGS): NO_DASHBOARD cannot be written back",
        ),
        ("TOO_MANY", "writeback.flags (from SYNCD_WRITEBACK_FLAGS): 'TOO_MANY' is not a flag code"),
    ],
)
def test_a_bad_flag_is_one_line_naming_the_key(flags: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(EXAMPLE, {"SYNCD_WRITEBACK_FLAGS": flags})
    assert message in str(error.value) and "\n" not in str(error.value)
