"""The Figma sync engine: configured Figma files → the store, within Figma's request budget.

Owns `FigmaMirror` (a pass over every configured file, and the per-file refresh a Figma webhook
triggers), the Figma JSON → row translation, and `FigmaFileReport` (what one file's step did).

Per file and pass, in this order:

1. a file marked ``rate_limited_until`` a moment still to come is skipped without any request
   (Figma answers Tier-1 overuse with a ``Retry-After`` of days; asking again only extends it);
2. ``/meta`` (1 request); ``/versions`` (1, the newest page) unless ``/meta`` shows the very
   version whose tree is already mirrored (then nothing is new there); ``/comments`` (1);
3. the file tree ``?depth=2`` (Tier 1, the expensive one) only when the newest version differs
   from the version whose tree is mirrored (``tree_version``), or on the first read, or forced.
   Pages and their direct children are written; nodes gone from the fresh tree are marked
   deleted by the store, never erased.

A 429 too long to sleep through marks the file ``rate_limited_until`` now + ``Retry-After``;
any other failure is recorded in ``last_error``. What was read before the failure is kept, and
the pass carries on with the next file. One log line per file, never with credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from adapters.figma import FigmaAPI
from adapters.transport import ApiError, RateLimited
from state.store import Store, parse_iso, utc_iso

__all__ = [
    "FigmaFileReport",
    "FigmaMirror",
    "comment_rows",
    "node_rows",
    "version_rows",
]

log = structlog.get_logger("syncd.figma")

DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds, when a 429 came without a usable Retry-After
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
    ) -> None:
        self.api = api
        self.store = store
        self.files = tuple(dict.fromkeys(files))
        self.clock = clock

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
        until = _parse(stored.get("rate_limited_until"))
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
        newest: str | None = None
        tree_read = False
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
            if plan.versions and (
                force_tree
                or not stored.get("tree_version")
                or (newest is not None and newest != stored["tree_version"])
            ):
                tree = self.api.file_tree(key, depth=2)
                tree_read = True
                nodes = node_rows(key, tree)
                file_row["tree_version"] = newest or _text(tree.get("version"))
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
            file_row, nodes=nodes, versions=versions, comments=comments, observed_at=observed_at
        )
        report = FigmaFileReport(
            key=key,
            mode=mode,
            requests=session.stats.requests - before,
            tree_read=tree_read and nodes is not None,
            error=error,
            version=newest,
            rate_limited_until=limited_until,
        )
        emit = log.info if mode == "synced" else log.warning
        emit(
            "figma file " + mode.replace("_", " "),
            file=key,
            mode=mode,
            requests=report.requests,
            tree_read=report.tree_read,
            version=newest,
            nodes=len(nodes) if nodes is not None else None,
            versions=len(versions),
            comments=None if comments is None else len(comments),
            error=error,
        )
        return report


# -- Figma JSON → rows -----------------------------------------------------------------------


def _parse(text: str | None) -> datetime | None:
    try:
        return parse_iso(text)
    except ValueError:
        return None


def _stamp(text: Any) -> str | None:
    """A remote timestamp in the store's one shape, or None when absent or unreadable."""
    moment = _parse(text) if isinstance(text, str) else None
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
