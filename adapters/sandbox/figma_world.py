"""The sandbox's Figma: sample files with pages, top-level frames, versions and comments.

Owns `FigmaWorld` (the state, its mutation methods, the five REST routes syncd reads — meta,
versions, comments, the file tree and ``/nodes?ids=`` — and a minimal webhooks V2 store with a
`deliver` helper), and `build_sample_figma` (the RDV-Solidarités mock-ups file the sample Trello
cards link to). Frames hold layers at any depth (`add_layer`), as real files do.

`FigmaWorld.handle` is the hook the sandbox server calls for every request under ``/v1/`` and
``/v2/``. Answers follow the shapes of `figma/rest-api-spec`; errors are Figma's
``{"status": N, "err": "..."}``. Every request is counted per route (``count("tree")``), and
`rate_limit_next` makes the next answers 429 with a ``Retry-After`` (days, like Figma's Tier-1
limits), for the rate-limit tests.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import urllib.error
import urllib.request
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

__all__ = ["SAMPLE_FILE_KEY", "FigmaWorld", "build_sample_figma"]

Json = dict[str, Any]
Answer = tuple[int, dict[str, str], bytes]

SAMPLE_FILE_KEY = "JhZCwwrmaw2NYrITCj8QAK"
EVENT_TYPES = frozenset(
    {
        "PING",
        "FILE_UPDATE",
        "FILE_VERSION_UPDATE",
        "FILE_DELETE",
        "LIBRARY_PUBLISH",
        "FILE_COMMENT",
        "DEV_MODE_STATUS_UPDATE",
    }
)
_FILE_ROUTE = re.compile(r"^/v1/files/([^/]+)(?:/(meta|versions|comments|nodes))?/?$")
_WEBHOOK_ROUTE = re.compile(r"^/v2/webhooks(?:/([^/]+))?/?$")
_ROUTE_NAMES = {
    None: "tree",
    "meta": "meta",
    "versions": "versions",
    "comments": "comments",
    "nodes": "nodes",
}


def _iso(moment: datetime) -> str:
    """Figma's timestamp shape: ``2026-11-28T10:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    payload = json.dumps(body, ensure_ascii=False).encode()
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, payload


def _error(status: int, message: str) -> Answer:
    return _json_answer(status, {"status": status, "err": message})


def _user(handle: str) -> Json:
    user_id = str(zlib.crc32(handle.encode()) * 7919)
    return {"id": user_id, "handle": handle, "img_url": f"https://s3-alpha.figma.com/{user_id}"}


def _pruned(node: Json, depth: int | None) -> Json:
    """A deep copy of `node` with `depth` levels of children below it (None: all of them)."""
    out = {k: copy.deepcopy(v) for k, v in node.items() if k != "children"}
    if "children" in node and (depth is None or depth > 0):
        below = None if depth is None else depth - 1
        out["children"] = [_pruned(child, below) for child in node["children"]]
    return out


def _who(user: Json) -> Json:
    return {"id": user["id"], "handle": user["handle"]}


class FigmaWorld:
    """Mutable, thread-safe Figma state (one lock); times come from ``clock()``."""

    def __init__(self, *, now: datetime | None = None, token: str | None = None) -> None:
        self.lock = threading.RLock()
        self.now = now  # frozen clock when set
        self.token = token  # None: any non-empty X-Figma-Token is accepted
        self.files: dict[str, Json] = {}
        self.webhooks: dict[str, Json] = {}
        self.deliveries: list[tuple[str, int]] = []  # (webhook id, HTTP status or 0)
        self.delivery_timeout = 5.0
        self._counts: Counter[str] = Counter()
        self._rate_limits: list[tuple[str | None, float]] = []  # (route or None, Retry-After)
        self._ids = itertools.count(1_000)
        self._versions = itertools.count(4_100_000_000)

    # -- clock, counters, faults ----------------------------------------------------------

    def clock(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)

    def count(self, route: str | None = None) -> int:
        """Requests received for `route` ("meta", "versions", "comments", "tree", "nodes",
        "webhooks"), or for all routes; 429 answers count too."""
        with self.lock:
            return self._counts.total() if route is None else self._counts[route]

    def reset_counts(self) -> None:
        with self.lock:
            self._counts.clear()

    def rate_limit_next(
        self, n: int = 1, retry_after: float = 86400, *, route: str | None = None
    ) -> None:
        """Answer the next `n` requests (of `route` only, when given) 429 with ``Retry-After``."""
        with self.lock:
            self._rate_limits.extend([(route, retry_after)] * n)

    # -- building files -------------------------------------------------------------------

    def add_file(
        self, key: str, name: str, *, editor_type: str = "figma", folder: str = ""
    ) -> Json:
        with self.lock:
            at = self.clock()
            file = {
                "key": key,
                "name": name,
                "folder_name": folder,
                "editorType": editor_type,
                "creator": _user("Mathilde Fournier"),
                "last_touched_by": _user("Mathilde Fournier"),
                "lastModified": at,
                "version": str(next(self._versions)),
                "pages": [],
                "versions": [],
                "comments": [],
            }
            self.files[key] = file
            return file

    def _file(self, key: str) -> Json:
        try:
            return self.files[key]
        except KeyError:
            raise KeyError(f"no Figma file {key!r} in the sandbox") from None

    def _touch(self, file: Json, by: str | None = None) -> None:
        file["lastModified"] = self.clock()
        if by:
            file["last_touched_by"] = _user(by)

    def add_page(self, key: str, name: str, *, node_id: str | None = None) -> str:
        with self.lock:
            file = self._file(key)
            node_id = node_id or f"0:{len(file['pages']) + 1}"
            file["pages"].append({"id": node_id, "name": name, "type": "CANVAS", "children": []})
            self._touch(file)
            return node_id

    def add_frame(
        self,
        key: str,
        name: str,
        *,
        page: int | str = 0,
        node_id: str | None = None,
        node_type: str = "FRAME",
        texts: tuple[str, ...] = (),
    ) -> str:
        """Add a top-level frame (or SECTION, COMPONENT…) to a page (index or id); its id."""
        with self.lock:
            file = self._file(key)
            canvas = self._page(file, page)
            node_id = node_id or f"{next(self._ids)}:{next(self._ids) % 997}"
            index = len(canvas["children"])
            children = [
                {
                    "id": f"I{node_id};{i + 1}:{i + 2}",
                    "name": text,
                    "type": "TEXT",
                    "characters": text,
                }
                for i, text in enumerate(texts)
            ]
            canvas["children"].append(
                {
                    "id": node_id,
                    "name": name,
                    "type": node_type,
                    "scrollBehavior": "SCROLLS",
                    "blendMode": "PASS_THROUGH",
                    "absoluteBoundingBox": {
                        "x": 1600.0 * index,
                        "y": 0.0,
                        "width": 1440.0,
                        "height": 1024.0,
                    },
                    "children": children,
                }
            )
            self._touch(file)
            return node_id

    def _page(self, file: Json, page: int | str) -> Json:
        if isinstance(page, int):
            return file["pages"][page]
        for canvas in file["pages"]:
            if canvas["id"] == page:
                return canvas
        raise KeyError(f"no page {page!r} in Figma file {file['key']!r}")

    def add_layer(
        self,
        parent_id: str,
        name: str,
        *,
        key: str = SAMPLE_FILE_KEY,
        node_id: str | None = None,
        node_type: str = "GROUP",
    ) -> str:
        """Add a layer (GROUP, FRAME, INSTANCE, TEXT…) inside any node of the file; its id."""
        with self.lock:
            file = self._file(key)
            parent = self._find(file, parent_id)
            if parent is None:
                raise KeyError(f"no node {parent_id!r} in Figma file {key!r}")
            node_id = node_id or f"{next(self._ids)}:{next(self._ids) % 997}"
            parent.setdefault("children", []).append(
                {"id": node_id, "name": name, "type": node_type, "children": []}
            )
            self._touch(file)
            return node_id

    def remove_frame(self, node_id: str, key: str = SAMPLE_FILE_KEY) -> None:
        """Remove a node at any depth (a top-level frame or a layer inside one)."""
        with self.lock:
            file = self._file(key)
            for parent in self._walk(file):
                children = parent.get("children") or []
                kept = [node for node in children if node["id"] != node_id]
                if len(kept) != len(children):
                    parent["children"] = kept
                    self._touch(file)
                    return
            raise KeyError(f"no frame {node_id!r} in Figma file {key!r}")

    def _walk(self, file: Json) -> list[Json]:
        """Every node of the file (pages first, then depth-first)."""
        out: list[Json] = []
        stack = list(reversed(file["pages"]))
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.get("children") or []))
        return out

    def _find(self, file: Json, node_id: str) -> Json | None:
        return next((node for node in self._walk(file) if node["id"] == node_id), None)

    def new_version(
        self,
        label: str = "",
        description: str = "",
        *,
        key: str = SAMPLE_FILE_KEY,
        by: str = "Mathilde Fournier",
        at: datetime | None = None,
    ) -> Json:
        """Save a version (named when `label`): bumps the file's ``version``/``lastModified``."""
        with self.lock:
            file = self._file(key)
            created = at or self.clock()
            version = {
                "id": str(next(self._versions)),
                "created_at": _iso(created),
                "label": label or None,
                "description": description or None,
                "user": _user(by),
                "thumbnail_url": f"https://s3-alpha.figma.com/thumbnails/{key}-{len(file['versions'])}",
            }
            file["versions"].insert(0, version)
            file["versions"].sort(key=lambda row: row["created_at"], reverse=True)
            if file["versions"][0] is version:
                file["version"] = version["id"]
                file["lastModified"] = created
                file["last_touched_by"] = _user(by)
            return copy.deepcopy(version)

    def add_comment(
        self,
        node_id: str | None,
        message: str,
        author: str,
        *,
        key: str = SAMPLE_FILE_KEY,
        at: datetime | None = None,
        parent_id: str = "",
    ) -> str:
        """A comment pinned to `node_id` (or placed on the canvas when None); its id."""
        with self.lock:
            file = self._file(key)
            comment_id = str(next(self._ids) * 1_000 + 7)
            client_meta: Json = (
                {"node_id": node_id, "node_offset": {"x": 120.0, "y": 48.0}}
                if node_id
                else {"x": 512.0, "y": 300.0}
            )
            file["comments"].append(
                {
                    "id": comment_id,
                    "file_key": key,
                    "parent_id": parent_id,
                    "user": _user(author),
                    "created_at": _iso(at or self.clock()),
                    "resolved_at": None,
                    "message": message,
                    "client_meta": client_meta,
                    "order_id": None if parent_id else str(len(file["comments"]) + 1),
                    "reactions": [],
                }
            )
            return comment_id

    def resolve_comment(
        self, comment_id: str, *, key: str = SAMPLE_FILE_KEY, at: datetime | None = None
    ) -> None:
        with self.lock:
            for comment in self._file(key)["comments"]:
                if comment["id"] == comment_id:
                    comment["resolved_at"] = _iso(at or self.clock())
                    return
            raise KeyError(f"no comment {comment_id!r} in Figma file {key!r}")

    # -- JSON views -----------------------------------------------------------------------

    def _file_url(self, file: Json) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", file["name"]).strip("-") or "Untitled"
        return f"https://www.figma.com/design/{file['key']}/{slug}"

    def _thumbnail(self, file: Json) -> str:
        return f"https://s3-alpha.figma.com/thumbnails/{file['key']}?v={file['version']}"

    def meta_json(self, file: Json) -> Json:
        return {
            "file": {
                "name": file["name"],
                "folder_name": file["folder_name"],
                "last_touched_at": _iso(file["lastModified"]),
                "creator": file["creator"],
                "last_touched_by": file["last_touched_by"],
                "thumbnail_url": self._thumbnail(file),
                "editorType": file["editorType"],
                "role": "editor",
                "link_access": "view",
                "url": self._file_url(file),
                "version": file["version"],
            }
        }

    def versions_json(self, file: Json, query: dict[str, list[str]]) -> Json:
        try:
            size = max(1, min(50, int(query.get("page_size", ["30"])[0])))
        except ValueError:
            size = 30
        versions = file["versions"]
        before = query.get("before", [None])[0]
        start = 0
        if before:
            start = next(
                (i + 1 for i, row in enumerate(versions) if row["id"] == before), len(versions)
            )
        page = versions[start : start + size]
        base = f"https://api.figma.com/v1/files/{file['key']}/versions?page_size={size}"
        pagination: Json = {}
        if start + size < len(versions):
            pagination["next_page"] = f"{base}&before={page[-1]['id']}"
        if start > 0 and page:
            pagination["prev_page"] = f"{base}&after={page[0]['id']}"
        return {"versions": copy.deepcopy(page), "pagination": pagination}

    def comments_json(self, file: Json) -> Json:
        comments = sorted(file["comments"], key=lambda row: row["created_at"], reverse=True)
        return {"comments": copy.deepcopy(comments)}

    def tree_json(self, file: Json, depth: int | None) -> Json:
        document = {
            "id": "0:0",
            "name": "Document",
            "type": "DOCUMENT",
            "scrollBehavior": "SCROLLS",
            "children": [
                _pruned(page, None if depth is None else depth - 1) for page in file["pages"]
            ],
        }
        if depth is not None and depth < 1:
            document.pop("children")
        return {
            "name": file["name"],
            "role": "editor",
            "lastModified": _iso(file["lastModified"]),
            "editorType": file["editorType"],
            "thumbnailUrl": self._thumbnail(file),
            "version": file["version"],
            "document": copy.deepcopy(document),
            "components": {},
            "componentSets": {},
            "schemaVersion": 0,
            "styles": {},
            "linkAccess": "view",
        }

    def nodes_json(self, file: Json, ids: list[str], depth: int | None) -> Json:
        """``GET /v1/files/:key/nodes``: each asked id → ``{"document": node, …}``, or ``null``
        when the file has no such node (Figma's answer: "the node id not existing")."""
        header = {k: v for k, v in self.tree_json(file, 0).items() if k != "document"}
        nodes: Json = {}
        for node_id in ids:
            node = self._find(file, node_id)
            nodes[node_id] = (
                None
                if node is None
                else {
                    "document": _pruned(node, depth),
                    "components": {},
                    "componentSets": {},
                    "schemaVersion": 0,
                    "styles": {},
                }
            )
        return {**header, "nodes": nodes}

    # -- the HTTP hook ----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> Answer:
        """Answer one request under ``/v1/`` or ``/v2/``: (status, headers, body)."""
        if "?" in path:
            path, _, raw = path.partition("?")
            query = {**parse_qs(raw), **query}
        method = method.upper()
        token = next((v for k, v in headers.items() if k.lower() == "x-figma-token"), "")
        with self.lock:
            route, match = self._route(path)
            if route is None or match is None:
                return _error(404, "Not found")
            self._counts[route] += 1
            if not token or (self.token is not None and token != self.token):
                return _error(403, "Invalid token")
            for i, (limited_route, retry_after) in enumerate(self._rate_limits):
                if limited_route is None or limited_route == route:
                    del self._rate_limits[i]
                    status, answer_headers, payload = _error(429, "Rate limit exceeded")
                    answer_headers.update(
                        {
                            "Retry-After": str(int(retry_after)),
                            "X-Figma-Plan-Tier": "starter",
                            "X-Figma-Rate-Limit-Type": "low",
                            "X-Figma-Upgrade-Link": "https://www.figma.com/pricing",
                        }
                    )
                    return status, answer_headers, payload
            if route == "webhooks":
                return self._webhooks(method, match.group(1), query, body)
            if method != "GET":
                return _error(405, "Method not allowed")
            file = self.files.get(match.group(1))
            if file is None:
                return _error(404, "Not found")
            if route == "meta":
                return _json_answer(200, self.meta_json(file))
            if route == "versions":
                return _json_answer(200, self.versions_json(file, query))
            if route == "comments":
                return _json_answer(200, self.comments_json(file))
            depth_text = query.get("depth", [""])[0]
            if depth_text and not depth_text.isdigit():
                return _error(400, "depth must be a positive integer")
            depth = int(depth_text) if depth_text else None
            if route == "nodes":
                ids = [i for i in ",".join(query.get("ids", [])).split(",") if i.strip()]
                if not ids:
                    return _error(400, "ids is required")
                return _json_answer(200, self.nodes_json(file, [i.strip() for i in ids], depth))
            return _json_answer(200, self.tree_json(file, depth))

    def _route(self, path: str) -> tuple[str | None, re.Match[str] | None]:
        match = _FILE_ROUTE.match(path)
        if match:
            return _ROUTE_NAMES[match.group(2)], match
        match = _WEBHOOK_ROUTE.match(path)
        if match:
            return "webhooks", match
        return None, None

    # -- webhooks V2 ------------------------------------------------------------------------

    def _webhooks(
        self, method: str, webhook_id: str | None, query: dict[str, list[str]], body: bytes
    ) -> Answer:
        if method == "POST" and webhook_id is None:
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return _error(400, "Invalid JSON body")
            if not isinstance(data, dict):
                return _error(400, "Invalid JSON body")
            return self._create_webhook(data)
        if webhook_id is None and method == "GET":
            context_id = query.get("context_id", [None])[0]
            hooks = [
                hook
                for hook in self.webhooks.values()
                if context_id is None or hook["context_id"] == context_id
            ]
            return _json_answer(200, {"webhooks": copy.deepcopy(hooks)})
        if webhook_id is None or webhook_id not in self.webhooks:
            return _error(404, "Not found")
        if method == "GET":
            return _json_answer(200, copy.deepcopy(self.webhooks[webhook_id]))
        if method == "DELETE":
            return _json_answer(200, self.webhooks.pop(webhook_id))
        return _error(405, "Method not allowed")

    def _create_webhook(self, data: Json) -> Answer:
        event_type = data.get("event_type")
        if event_type not in EVENT_TYPES:
            return _error(400, f"Invalid event_type: {event_type!r}")
        context = data.get("context") or ("team" if data.get("team_id") else None)
        context_id = data.get("context_id") or data.get("team_id")
        if context not in {"team", "project", "file"} or not context_id:
            return _error(400, "context and context_id are required")
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            return _error(400, "endpoint must be an http(s) URL")
        if len(endpoint) > 2048:
            return _error(400, "endpoint is longer than 2048 characters")
        passcode = data.get("passcode")
        if not isinstance(passcode, str) or not passcode or len(passcode) > 100:
            return _error(400, "passcode is required (at most 100 characters)")
        status = data.get("status", "ACTIVE")
        if status not in {"ACTIVE", "PAUSED"}:
            return _error(400, "status must be ACTIVE or PAUSED")
        webhook_id = str(next(self._ids))
        hook = {
            "id": webhook_id,
            "event_type": event_type,
            "context": context,
            "context_id": str(context_id),
            "team_id": str(context_id) if context == "team" else "",
            "plan_api_id": "organization-0001",
            "endpoint": endpoint,
            "passcode": passcode,
            "status": status,
            "client_id": None,
            "description": data.get("description") or None,
        }
        self.webhooks[webhook_id] = hook
        return _json_answer(200, copy.deepcopy(hook))

    def deliver(
        self,
        event_type: str,
        file_key: str,
        passcode: str | None = None,
        *,
        endpoint: str | None = None,
        **extra: Any,
    ) -> list[tuple[str, int]]:
        """POST a V2 payload to every ACTIVE webhook registered for `event_type` on the file
        (file context) or any file (team/project context); returns ``[(webhook id, status)]``.

        `passcode` overrides the registered one (to test a wrong passcode); `endpoint` delivers
        to that URL alone, registered or not. Runs in the caller's thread, outside the lock.
        """
        with self.lock:
            file = self.files.get(file_key)
            targets = [
                (hook["id"], hook["endpoint"], hook["passcode"])
                for hook in self.webhooks.values()
                if hook["status"] == "ACTIVE"
                and hook["event_type"] == event_type
                and (hook["context"] != "file" or hook["context_id"] == file_key)
            ]
            if endpoint is not None:
                targets = [("0", endpoint, passcode or "")]
            if not targets:
                raise LookupError(f"no active {event_type} webhook for Figma file {file_key!r}")
            payloads = [
                (hook_id, url, self.payload(event_type, file_key, passcode or code, hook_id, file))
                for hook_id, url, code in targets
            ]
        results: list[tuple[str, int]] = []
        for hook_id, url, payload in payloads:
            payload.update(extra)
            request = urllib.request.Request(
                url,
                data=json.dumps(payload, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json", "User-Agent": "Figma-Webhooks"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=self.delivery_timeout) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, TimeoutError, OSError):
                status = 0
            with self.lock:
                self.deliveries.append((hook_id, status))
            results.append((hook_id, status))
        return results

    def payload(
        self, event_type: str, file_key: str, passcode: str, webhook_id: str, file: Json | None
    ) -> Json:
        """The body Figma posts for one event (common fields plus the event's own)."""
        now = self.clock()
        body: Json = {
            "event_type": event_type,
            "passcode": passcode,
            "timestamp": _iso(now),
            "webhook_id": webhook_id,
        }
        if event_type == "PING":
            return body
        body.update({"file_key": file_key, "file_name": file["name"] if file else ""})
        by = file["last_touched_by"] if file else _user("Figma")
        if event_type == "FILE_VERSION_UPDATE" and file and file["versions"]:
            newest = file["versions"][0]
            body.update(
                {
                    "version_id": newest["id"],
                    "created_at": newest["created_at"],
                    "label": newest["label"] or "",
                    "description": newest["description"] or "",
                    "triggered_by": _who(newest["user"]),
                }
            )
        elif event_type == "FILE_COMMENT" and file and file["comments"]:
            newest = max(file["comments"], key=lambda row: row["created_at"])
            body.update(
                {
                    "comment_id": newest["id"],
                    "comment": [{"text": newest["message"]}],
                    "created_at": newest["created_at"],
                    "mentions": [],
                    "triggered_by": _who(newest["user"]),
                }
            )
        elif event_type in {"FILE_UPDATE", "FILE_DELETE"}:
            body["triggered_by"] = _who(by)
        return body


# --------------------------------------------------------------------------- the sample


def build_sample_figma(now: datetime | None = None) -> FigmaWorld:
    """The RDV-Solidarités mock-ups file (`SAMPLE_FILE_KEY`), as it stands at `now`.

    Three pages; top-level frames include ``5:95`` (Prise de RDV – Accueil usager) and
    ``148:129`` (Prototype agent – Agenda), the two frames the sample product cards link to (the
    third link, ``999:1``, points at no node at all). Layers nest inside frames: ``5:120`` (a
    banner) and ``5:131`` (a button inside it) in ``5:95``, ``148:201`` in ``148:129``. Five
    versions, the newest 2 days before `now`; four comments, three pinned to frames, one of them
    resolved. With `now` the clock stays frozen there.
    """
    anchor = (now or datetime.now(UTC)).astimezone(UTC)
    world = FigmaWorld(now=anchor - timedelta(days=120))
    key = SAMPLE_FILE_KEY

    def at(days_ago: float) -> datetime:
        return anchor - timedelta(days=days_ago)

    world.add_file(key, "RDV-Solidarités – Maquettes", folder="Produit RDV-Solidarités")
    world.add_page(key, "Parcours usager", node_id="0:1")
    world.add_page(key, "Espace agent", node_id="1:2")
    world.add_page(key, "Archives", node_id="1:3")
    world.add_frame(
        key,
        "Prise de RDV – Accueil usager",
        page="0:1",
        node_id="5:95",
        texts=("Prendre rendez-vous", "Choisissez votre motif"),
    )
    world.add_frame(key, "Prise de RDV – Choix du créneau", page="0:1", node_id="5:180")
    world.add_frame(key, "Prise de RDV – Confirmation", page="0:1", node_id="12:44")
    world.add_frame(key, "Composants formulaire", page="0:1", node_id="31:2", node_type="SECTION")
    world.add_frame(
        key,
        "Prototype agent – Agenda",
        page="1:2",
        node_id="148:129",
        texts=("Agenda de la semaine",),
    )
    world.add_frame(key, "Plages d'ouverture", page="1:2", node_id="148:377")
    world.add_frame(key, "Statistiques – tableau de bord", page="1:2", node_id="152:6")
    world.add_frame(key, "Ancien parcours (2023)", page="1:3", node_id="77:1")
    # Layers inside frames, as designers link them ("copy link to selection"): the tree read
    # at depth 2 does not show them; only /nodes?ids= does.
    banner = world.add_layer("5:95", "Bandeau – motif choisi en premier", key=key, node_id="5:120")
    world.add_layer(
        banner, "Bouton « Prendre RDV »", key=key, node_id="5:131", node_type="INSTANCE"
    )
    world.add_layer("148:129", "Légende des absences", key=key, node_id="148:201")

    for days_ago, label, description, by in (
        (75, "Parcours usager v1", "Première version validée en atelier", "Mathilde Fournier"),
        (41, "", "", "Mathilde Fournier"),
        (20, "Agenda agent v2", "Vue semaine et plages d'ouverture", "Thomas Girard"),
        (9, "", "", "Thomas Girard"),
        (2, "Accueil usager v3", "Nouveau bandeau, motif choisi en premier", "Mathilde Fournier"),
    ):
        world.new_version(label, description, key=key, by=by, at=at(days_ago))

    world.add_comment(
        "5:95",
        "Le bouton « Prendre RDV » doit rester visible sur mobile.",
        "Camille Martin",
        key=key,
        at=at(6),
    )
    world.add_comment(
        "148:129",
        "Prévoir l'affichage des absences de l'agent dans l'agenda.",
        "Léa Dubois",
        key=key,
        at=at(4),
    )
    resolved = world.add_comment(
        "5:180",
        "Le créneau sélectionné n'est pas assez contrasté.",
        "Sophie Lefèvre",
        key=key,
        at=at(15),
    )
    world.resolve_comment(resolved, key=key, at=at(10))
    world.add_comment(
        None,
        "Penser à vérifier l'accessibilité (RGAA) avant la mise en prod.",
        "Julien Moreau",
        key=key,
        at=at(3),
    )
    world.now = now  # frozen at `now` when given, else the real clock
    return world
