"""The Figma sync engine: configured Figma files → the store, within Figma's request budget.

Owns `FigmaMirror` (a pass over every configured file, and the per-file refresh a Figma webhook
triggers), the Figma JSON → row translation, and `FigmaFileReport` (what one file's step did).

Per file and pass, in this order:

1. a file marked ``rate_limited_until`` a moment still to come is skipped without any request
   (Figma answers Tier-1 overuse with a ``Retry-After`` of days; asking again only extends it);
2. ``/meta`` (1 request); ``/versions`` (1, the newest page) unless ``/meta`` shows the very
   version whose tree is already mirrored (then nothing is new there); ``/comments`` (1);
3. the Tier-1 reads, at most once per ``tree_interval`` per file (``figma.tree_read_interval_
   minutes``, so that autosave versions do not each cost a read; the first read and a forced
   one are never held back):
   - the file tree ``?depth=2`` when the newest version differs from the version whose tree is
     mirrored (``tree_version``), or on the first read, or forced. Pages and their direct
     children are written; nodes gone from the fresh tree are marked deleted by the store;
   - ``/nodes?ids=…`` (1 request for all of them) for the nodes open cards link to whose last
     answer is not about the newest version (the version changed, or the link is new), except
     those the tree of the newest version already shows. A layer inside a frame is known only
     from here; Figma's ``null`` for an id is the one proof that a link is broken.

A 429 too long to sleep through marks the file ``rate_limited_until`` now + ``Retry-After``;
any other failure is recorded in ``last_error``. What was read before the failure is kept, and
the pass carries on with the next file. One log line per file, never with credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from adapters.figma import FigmaAPI
from adapters.transport import ApiError, RateLimited
from state.store import Store
from state.timestamps import EARLIEST, parse_iso, utc_iso

__all__ = [
    "FigmaFileReport",
    "FigmaMirror",
    "comment_rows",
    "node_check_rows",
    "node_rows",
    "version_rows",
]

log = structlog.get_logger("syncd.figma")

DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds, when a 429 came without a usable Retry-After
DEFAULT_TREE_INTERVAL = timedelta(minutes=60)  # figma.tree_read_interval_minutes
_VERSION_EVENTS = frozenset({"FILE_VERSION_UPDATE", "FILE_UPDATE"})

Row = dict[str, Any]


@dataclass(frozen=True)
class FigmaFileReport:
    """What one file's sync step did."""

    key: str
    mode: str  # "synced", "rate_limited", "failed", "skipped"
    requests: int = 0
    tree_read: bool = False
    error: str | None = None
    version: str | None = None  # the newest version id seen, when read
    rate_limited_until: str | None = None
    nodes_checked: int = 0  # linked nodes asked of /nodes
    tier1_postponed_until: str | None = None  # a due tree or node read held back by the interval


@dataclass(frozen=True)
class _Plan:
    meta: bool = True
    versions: bool = True
    comments: bool = True


_FULL = _Plan()
_VERSION_ONLY = _Plan(comments=False)
_COMMENTS_ONLY = _Plan(meta=False, versions=False)


class FigmaMirror:
    """Mirrors the configured Figma files into the store (see the module docstring)."""

    def __init__(
        self,
        api: FigmaAPI,
        store: Store,
        files: Sequence[str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tree_interval: timedelta = DEFAULT_TREE_INTERVAL,
    ) -> None:
        self.api = api
        self.store = store
        self.files = tuple(dict.fromkeys(files))
        self.clock = clock
        self.tree_interval = tree_interval

    def sync(
        self, *, force_tree: bool = False, keys: Sequence[str] | None = None
    ) -> list[FigmaFileReport]:
        """One pass over `keys` (default: every configured file); never raises for a remote
        failure."""
        chosen = [key for key in self.files if keys is None or key in keys]
        if not chosen:
            return []
        stored = self._stored_files()
        return [
            self._sync_file(key, stored.get(key, {}), _FULL, force_tree=force_tree)
            for key in chosen
        ]

    def refresh(self, key: str, event_type: str | None = None) -> FigmaFileReport:
        """What a Figma webhook triggers for one file.

        ``FILE_VERSION_UPDATE``/``FILE_UPDATE``: meta and versions (and the tree when the newest
        version is new); ``FILE_COMMENT``: comments only; ``PING``: nothing; any other event (or
        None): a full step. A file that is not configured is skipped.
        """
        if key not in self.files or event_type == "PING":
            report = FigmaFileReport(key, "skipped")
            log.info("figma file skipped", file=key, event_type=event_type, requests=0)
            return report
        if event_type in _VERSION_EVENTS:
            plan = _VERSION_ONLY
        elif event_type == "FILE_COMMENT":
            plan = _COMMENTS_ONLY
        else:
            plan = _FULL
        return self._sync_file(key, self._stored_files().get(key, {}), plan, force_tree=False)

    # -- one file -------------------------------------------------------------------------

    def _stored_files(self) -> dict[str, Row]:
        return {row["key"]: row for row in self.store.figma_files()}

    def _sync_file(
        self, key: str, stored: Row, plan: _Plan, *, force_tree: bool
    ) -> FigmaFileReport:
        now = self.clock()
        until = parse_iso(stored.get("rate_limited_until"))
        if until is not None and until > now:
            report = FigmaFileReport(
                key, "rate_limited", rate_limited_until=stored["rate_limited_until"]
            )
            log.info(
                "figma file skipped: rate limited",
                file=key,
                mode=report.mode,
                until=report.rate_limited_until,
                requests=0,
            )
            return report

        session = self.api.session
        before = session.stats.requests
        observed_at = utc_iso(now)
        file_row: Row = {"key": key}
        versions: list[Row] = []
        comments: list[Row] | None = None  # None: not read this time
        nodes: list[Row] | None = None
        checks: list[Row] = []
        asked: list[str] = []
        newest: str | None = None
        postponed: str | None = None
        mode, error, limited_until = "synced", None, None
        try:
            if plan.meta:
                file_row.update(_file_columns(self.api.file_meta(key)))
            # /meta carries the current version: when it is the one whose tree we hold, the
            # version list has nothing new either, and one request is saved.
            unchanged = (
                plan.meta
                and not force_tree
                and file_row.get("version") is not None
                and file_row.get("version") == stored.get("version")
                and stored.get("tree_version") is not None
            )
            if unchanged:
                newest = file_row.get("version")
            elif plan.versions:
                raw_versions = self.api.versions(key)
                versions = version_rows(key, raw_versions)
                newest = str(raw_versions[0]["id"]) if raw_versions else file_row.get("version")
            if plan.comments:
                comments = comment_rows(key, self.api.comments(key))
            if plan.versions:
                tree_due = (
                    force_tree
                    or not stored.get("tree_version")
                    or (newest is not None and newest != stored["tree_version"])
                )
                linked = self.store.figma_linked_nodes(key)
                unanswered = [
                    node_id
                    for node_id in linked.node_ids
                    if newest is None or (linked.checks.get(node_id) or {}).get("version") != newest
                ]
                next_read = self._next_tier1_read(stored)
                if (tree_due or unanswered) and not force_tree and next_read > now:
                    postponed = utc_iso(next_read)
                elif tree_due or unanswered:
                    file_row["tree_read_at"] = observed_at  # an attempt spends the budget too
                    in_tree = linked.in_tree  # the mirrored tree is of the newest version
                    if tree_due:
                        tree = self.api.file_tree(key, depth=2)
                        nodes = node_rows(key, tree)
                        file_row["tree_version"] = newest or _text(tree.get("version"))
                        newest = newest or file_row["tree_version"]
                        in_tree = {row["node_id"]: row for row in nodes}
                        unanswered = linked.node_ids  # every answer was about an older version
                    to_ask = [node_id for node_id in unanswered if node_id not in in_tree]
                    answers = self.api.file_nodes(key, to_ask) if to_ask else {}
                    asked = to_ask
                    checks = node_check_rows(
                        key, unanswered, in_tree, answers, linked.checks, newest, observed_at
                    )
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
            limited_until = utc_iso(now + timedelta(seconds=wait))
            mode = "rate_limited"
            error = f"rate limited until {limited_until} (Retry-After {wait:.0f} s)"
            file_row.update(rate_limited_until=limited_until, last_error=error)
        except ApiError as exc:
            mode, error = "failed", str(exc)
            file_row["last_error"] = error
        else:
            file_row.update(last_synced_at=observed_at, last_error=None, rate_limited_until=None)

        self.store.write_figma_file(
            file_row,
            nodes=nodes,
            versions=versions,
            comments=comments,
            observed_at=observed_at,
            node_checks=checks,
        )
        report = FigmaFileReport(
            key=key,
            mode=mode,
            requests=session.stats.requests - before,
            tree_read=nodes is not None,
            error=error,
            version=newest,
            rate_limited_until=limited_until,
            nodes_checked=len(asked),
            tier1_postponed_until=postponed,
        )
        emit = log.info if mode == "synced" else log.warning
        emit(
            "figma file " + mode.replace("_", " "),
            file=key,
            mode=mode,
            requests=report.requests,
            tree_read=report.tree_read,
            nodes_checked=report.nodes_checked,
            tier1_postponed_until=postponed,
            version=newest,
            nodes=len(nodes) if nodes is not None else None,
            versions=len(versions),
            comments=None if comments is None else len(comments),
            error=error,
        )
        return report

    def _next_tier1_read(self, stored: Row) -> datetime:
        """When the file's next Tier-1 read (tree or nodes) may happen: its last one plus the
        interval; at once when it never had one."""
        last = parse_iso(stored.get("tree_read_at"))
        return EARLIEST if last is None else last + self.tree_interval


# -- Figma JSON → rows -----------------------------------------------------------------------


def _stamp(text: Any) -> str | None:
    """A remote timestamp in the store's one shape, or None when absent or unreadable."""
    moment = parse_iso(text)
    return utc_iso(moment) if moment is not None else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _file_columns(meta: Row) -> Row:
    return {
        "name": str(meta.get("name") or ""),
        "last_modified": _stamp(meta.get("last_touched_at")),
        "version": _text(meta.get("version")),
        "editor_type": _text(meta.get("editorType")),
        "thumbnail_url": _text(meta.get("thumbnail_url")),
    }


def version_rows(key: str, versions: Sequence[Row]) -> list[Row]:
    """``/versions`` items → ``figma_version`` rows."""
    rows = []
    for version in versions:
        user = version.get("user") if isinstance(version.get("user"), dict) else {}
        rows.append(
            {
                "file_key": key,
                "id": str(version["id"]),
                "created_at": _stamp(version.get("created_at")) or "",
                "label": version.get("label") or None,
                "description": version.get("description") or None,
                "user_name": _text(user.get("handle")),
            }
        )
    return rows


def comment_rows(key: str, comments: Sequence[Row]) -> list[Row]:
    """``/comments`` items → ``figma_comment`` rows.

    ``node_id`` is the frame a thread is pinned to (``client_meta.node_id``); replies and
    comments placed on the canvas have none.
    """
    rows = []
    for comment in comments:
        user = comment.get("user") if isinstance(comment.get("user"), dict) else {}
        meta = comment.get("client_meta")
        node_id = meta.get("node_id") if isinstance(meta, dict) else None
        if comment.get("parent_id"):
            node_id = None
        rows.append(
            {
                "file_key": key,
                "id": str(comment["id"]),
                "author": str(user.get("handle") or ""),
                "message": str(comment.get("message") or ""),
                "created_at": _stamp(comment.get("created_at")) or "",
                "resolved_at": _stamp(comment.get("resolved_at")),
                "node_id": _text(node_id),
            }
        )
    return rows


def node_rows(key: str, tree: Row) -> list[Row]:
    """The pages (``CANVAS``, no page) and their direct children of a ``?depth=2`` tree.

    A document without any page is refused (`ApiError`): writing it would mark every mirrored
    frame deleted.
    """
    rows: list[Row] = []
    pages = [
        page
        for page in (tree.get("document") or {}).get("children") or []
        if isinstance(page, dict) and page.get("type") == "CANVAS" and page.get("id")
    ]
    if not pages:
        raise ApiError(f"figma file {key}: the tree has no page")
    seen: set[str] = set()
    for page in pages:
        for node, page_id in [(page, None)] + [
            (child, page["id"]) for child in page.get("children") or []
        ]:
            if not isinstance(node, dict) or not node.get("id") or str(node["id"]) in seen:
                continue
            seen.add(str(node["id"]))
            rows.append(
                {
                    "file_key": key,
                    "node_id": str(node["id"]),
                    "page_id": page_id,
                    "name": str(node.get("name") or ""),
                    "type": str(node.get("type") or ""),
                }
            )
    return rows


def node_check_rows(
    key: str,
    node_ids: Sequence[str],
    in_tree: Mapping[str, Row],
    answers: Mapping[str, Row | None],
    previous: Mapping[str, Row],
    version: str | None,
    observed_at: str,
) -> list[Row]:
    """``figma_node_check`` rows for `node_ids`, about `version`: found when the tree of that
    version shows the node or ``/nodes`` returned it, not found when ``/nodes`` answered
    ``null``; an id neither shows nor answered gets no row (nothing is known)."""
    rows: list[Row] = []
    for node_id in node_ids:
        before = previous.get(node_id) or {}
        if node_id in in_tree:
            node: Row | None = in_tree[node_id]
        elif node_id in answers:
            node = answers[node_id]
        else:
            continue
        rows.append(
            {
                "file_key": key,
                "node_id": node_id,
                "found": node is not None,
                "name": str((node or {}).get("name") or before.get("name") or ""),
                "type": str((node or {}).get("type") or before.get("type") or ""),
                "version": version,
                "checked_at": observed_at,
                "seen_at": observed_at if node is not None else before.get("seen_at"),
            }
        )
    return rows
