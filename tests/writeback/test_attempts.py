"""Whether an attempt to post a comment can still be in flight (crash, kill -9, another host)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from syncd.writeback.attempts import ProcessIdentity, settled

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
GRACE = timedelta(seconds=100)


def test_identity_round_trips_through_its_text() -> None:
    me = ProcessIdentity.current()
    assert ProcessIdentity.parse(str(me)) == me
    assert ProcessIdentity.parse("garbage") is None


def test_own_attempt_and_dead_process_are_settled_at_once() -> None:
    me = ProcessIdentity.current()
    assert settled(me, str(me), NOW, NOW, GRACE)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = ProcessIdentity(me.host, me.namespace, int(gone.stdout), "cafe0000")
    assert settled(me, str(dead), NOW, NOW, GRACE)
    earlier_self = ProcessIdentity(me.host, me.namespace, me.pid, "00000000")
    assert settled(me, str(earlier_self), NOW, NOW, GRACE)  # a restart that got our pid


def test_a_live_or_remote_attempt_waits_for_the_grace_period() -> None:
    me = ProcessIdentity.current()
    parent = ProcessIdentity(me.host, me.namespace, 1, "beef0000")  # pid 1 is alive
    remote = ProcessIdentity("another-host", "1", 42, "beef0000")
    for other in (parent, remote):
        assert not settled(me, str(other), NOW, NOW + timedelta(seconds=99), GRACE)
        assert settled(me, str(other), NOW, NOW + timedelta(seconds=100), GRACE)
