"""Tests of syncd.metrics: the flag gauge knows every flag code from the start."""

from __future__ import annotations

from syncd.metrics import Metrics
from syncd.rules.governance import FlagCode


def test_every_flag_code_is_exposed_before_any_flag_opens() -> None:
    text, _content_type = Metrics().render()
    for code in FlagCode:
        assert f'syncd_flags_open{{code="{code}"}} 0.0'.encode() in text
