"""Issue 9's target against a real ``syncd run`` over loopback (`tests/support/hostile_run.py`): a
few hundred hostile requests of every kind, on every route, with and without credentials; never
a 5xx, nothing stored from a refused delivery, the daemon alive and ready afterwards, valid
deliveries still applied, no traceback in its log. ``bench/fuzz_http.py`` sends thousands."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_run import assert_clean, fuzz_syncd, running_syncd

pytestmark = pytest.mark.slow


def test_hostile_requests_against_syncd_run(tmp_path: Path) -> None:
    with running_syncd(tmp_path) as run:
        figures = fuzz_syncd(run, requests=600)
        print("\n".join(figures.lines()))
        assert figures.requests >= 580  # every example sent (a few may repeat)
        assert_clean(figures)
