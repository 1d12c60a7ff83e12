"""Group commit (`syncd.daemon.intake.GroupCommit`): concurrent submissions share few commits,
and none returns before the commit holding it has succeeded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from syncd.daemon.intake import GroupCommit


class _Commits:
    """A commit that blocks until released and records what each commit held."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.committed: set[int] = set()
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def __call__(self, items: list[int]) -> list[str]:
        self.started.set()
        assert self.release.wait(10)
        if self.fail:
            raise OSError("disk full")
        self.groups.append(list(items))
        self.committed.update(items)
        return [f"ok {item}" for item in items]


def test_many_concurrent_submits_are_few_commits_each_answered_after_its_commit() -> None:
    commits = _Commits()
    group: GroupCommit[int, str] = GroupCommit(commits)
    answered_before_commit: list[int] = []

    def submit(item: int) -> str:
        result = group.submit(item)
        if item not in commits.committed:  # the answer came before the commit: a bug
            answered_before_commit.append(item)
        return result

    with ThreadPoolExecutor(max_workers=40) as pool:
        first = pool.submit(submit, 0)
        assert commits.started.wait(10)  # the first submission leads, its commit blocks
        others = [pool.submit(submit, item) for item in range(1, 40)]
        _wait_for(lambda: group.waiting == 39)
        # while the first commit is held, nobody else may be answered
        assert not any(future.done() for future in [first, *others])
        commits.release.set()
        results = [future.result(10) for future in [first, *others]]
    assert results == [f"ok {item}" for item in range(40)]
    assert answered_before_commit == []
    assert group.commits == len(commits.groups) == 2  # 40 submissions, 2 commits:
    assert commits.groups[0] == [0]  # the first alone, then everyone who waited for it
    assert sorted(item for items in commits.groups for item in items) == list(range(40))


def test_a_failed_commit_fails_every_submission_it_held_and_the_next_one_leads() -> None:
    commits = _Commits()
    commits.fail = True
    group: GroupCommit[int, str] = GroupCommit(commits)
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(group.submit, item) for item in range(5)]
        commits.release.set()
        for future in futures:
            with pytest.raises(OSError, match="disk full"):
                future.result(10)
    commits.fail = False
    assert group.submit(7) == "ok 7"  # the intake works again once the store does


def test_a_group_never_exceeds_max_batch() -> None:
    commits = _Commits()
    group: GroupCommit[int, str] = GroupCommit(commits, max_batch=4)
    with ThreadPoolExecutor(max_workers=13) as pool:
        first = pool.submit(group.submit, 0)
        assert commits.started.wait(10)
        others = [pool.submit(group.submit, item) for item in range(1, 13)]
        _wait_for(lambda: group.waiting == 12)
        commits.release.set()
        assert [f.result(10) for f in [first, *others]] == [f"ok {i}" for i in range(13)]
    assert [len(items) for items in commits.groups] == [1, 4, 4, 4]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.005)
