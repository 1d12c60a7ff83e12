"""The one sync pass: Trello boards, then Figma files, then the governance flags, then write-back.

`syncd sync`, `syncd demo` and the daemon's scheduler all run `sync_pass`. What differs is
passed in, never written a second time:

- `PassScope`: which boards, Figma files and whether the flags and write-back (the CLI:
  everything; the daemon: the duties this replica holds, see `syncd.daemon.scheduler`);
- `PassHooks`: the daemon's extras, as observers: the lock of the boards synced, shared with
  the webhook worker (and, on PostgreSQL, with the other replicas), a stop flag checked
  between steps, step timings (metrics), the boards' reports (the in-memory error bookkeeping
  of `/readyz`) and how write-back follows the flags (the CLI: a round inline,
  `writeback_round`; the daemon: its write-back thread woken).

The flags are recomputed by `syncd.rules.flags.recompute`: the mirror read in one read
transaction on the calling thread and evaluated there, only the recording a routed write step
(inline in the CLI, on the writer thread in the daemon), one evaluation at a time. A write
landing between the read and the recording is in the next evaluation (a webhook change asks for
one; a pass ends with one): the flags recorded are always those of one consistent mirror state,
and the writer never waits behind an evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.figma.engine import FigmaFileReport
from syncd.rules.flags import Recomputed, recompute
from syncd.runtime import Runtime
from syncd.trello.engine import BoardReport

if TYPE_CHECKING:  # write-back is imported only when enabled (`syncd.runtime`)
    from syncd.writeback.service import RoundReport

log = structlog.get_logger("syncd.sync")


@dataclass(frozen=True)
class PassScope:
    """What one pass covers; None means every configured board or Figma file."""

    boards: Sequence[BoardConfig] | None = None
    figma_files: Sequence[str] | None = None
    flags: bool = True
    writeback: bool = True  # a write-back round after the flags (when enabled)

    @property
    def empty(self) -> bool:
        return not (_wants(self.boards) or _wants(self.figma_files) or self.flags)


def _wants(chosen: Sequence[object] | None) -> bool:
    return chosen is None or len(chosen) > 0


EVERYTHING = PassScope()


def _no_lock(_boards: Sequence[BoardConfig]) -> AbstractContextManager[object]:
    return nullcontext()


def _no_step(_kind: str, _seconds: float) -> None:
    return None


def _no_reports(_reports: list[BoardReport]) -> None:
    return None


def writeback_round(runtime: Runtime, flags: Recomputed) -> RoundReport | None:
    """Write-back after a flag computation, inline (when disabled: remember it is off, so the
    flag events until it is turned on again are not commented)."""
    if runtime.writeback is None:
        if runtime.store.writeback_state().get("enabled_since"):
            runtime.store.set_writeback_enabled(False, utc_iso(runtime.clock()))
        return None
    return runtime.writeback.run(flags)


@dataclass(frozen=True)
class PassHooks:
    """The caller's extras around the pass (defaults: none, as in the CLI)."""

    # held around the Trello step, given the boards it syncs (the daemon: their board locks)
    trello_lock: Callable[[Sequence[BoardConfig]], AbstractContextManager[object]] = _no_lock
    stopping: Callable[[], bool] = lambda: False
    step_done: Callable[[str, float], None] = _no_step  # kind: poll, full, figma
    boards_done: Callable[[list[BoardReport]], None] = _no_reports
    after_flags: Callable[[Runtime, Recomputed], RoundReport | None] = writeback_round


@dataclass
class PassResult:
    boards: list[BoardReport]
    figma: list[FigmaFileReport] = field(default_factory=list)
    flags: Recomputed | None = None
    writeback: RoundReport | None = None

    @property
    def failed(self) -> list[str]:
        failures = [f"{r.board}: {r.error}" for r in self.boards if r.error]
        failures += [f"figma {r.key}: {r.error}" for r in self.figma if r.mode == "failed"]
        return failures


def sync_pass(
    runtime: Runtime,
    *,
    full: bool = False,
    scope: PassScope = EVERYTHING,
    hooks: PassHooks | None = None,
) -> PassResult:
    """Every board of `scope`, then its Figma files, then the flags and write-back (see the
    module docstring).

    A board's or a file's remote failure is in the result (`PassResult.failed`); a store
    failure raises.
    """
    hooks = hooks or PassHooks()
    result = PassResult(boards=[])
    if _wants(scope.boards):
        started = time.perf_counter()
        boards = runtime.settings.trello.boards if scope.boards is None else scope.boards
        with hooks.trello_lock(boards):
            result.boards = runtime.mirror.sync(full=full, boards=scope.boards)
        hooks.step_done("full" if full else "poll", time.perf_counter() - started)
        hooks.boards_done(result.boards)
    if runtime.figma is not None and _wants(scope.figma_files) and not hooks.stopping():
        started = time.perf_counter()
        result.figma = runtime.figma.sync(force_tree=False, keys=scope.figma_files)
        hooks.step_done("figma", time.perf_counter() - started)
    if scope.flags and not hooks.stopping():
        # every pass: STALE_PRIORITY comes with time alone; only differences are written
        result.flags = recompute_flags(runtime)
        if scope.writeback and not hooks.stopping():
            result.writeback = hooks.after_flags(runtime, result.flags)
    return result


def recompute_flags(runtime: Runtime) -> Recomputed:
    """Evaluate the rules over the mirror and record the flag changes (only the recording is a
    write step: the reading and the evaluation never hold the writer)."""
    result = recompute(runtime.store, runtime.settings.governance, runtime.clock())
    if result.opened or result.resolved:
        log.info("flags changed", opened=result.opened, resolved=result.resolved)
    return result
