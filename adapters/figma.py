"""The Figma REST calls syncd makes (`FigmaAPI`), over one `ApiSession` (`make_figma_session`).

Owns the Figma routes and the shape checks of their answers; the wire (rewrite of
``https://api.figma.com`` onto the configured base, the ``X-Figma-Token`` header, timeouts, the
per-minute token bucket, retries, a too-long ``Retry-After`` raised as `RateLimited`) is the
session's.

Budget (Figma's limits since Nov 2025, see docs/ and the anchors note): the file tree
``GET /v1/files/{key}`` is a Tier-1 endpoint, capped at 6 requests a month on Starter files and
View/Collab seats, with ``Retry-After`` answers of several days. Callers read it only when the
newest version changed; ``/meta``, ``/versions`` and ``/comments`` are the cheap steady-state calls.
``GET /v1/files/{key}/nodes`` is Tier 1 as well: callers ask it for all of a file's linked nodes
at once, under the same interval as the tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import requests

from adapters.transport import ApiError, ApiSession, RequestEvent, RetryPolicy, TokenBucket

__all__ = ["FIGMA_PUBLIC_PREFIX", "FigmaAPI", "make_figma_session"]

FIGMA_PUBLIC_PREFIX = "https://api.figma.com"
FIGMA_WINDOW_SECONDS = 60.0
VERSIONS_PAGE_SIZE = 50  # Figma's maximum


def make_figma_session(
    *,
    api_base: str,
    token: str,
    max_requests_per_minute: int,
    timeout: float,
    policy: RetryPolicy | None = None,
    observer: Callable[[RequestEvent], None] | None = None,
) -> ApiSession:
    """The Figma `ApiSession`: rewrite, ``X-Figma-Token``, timeout, per-minute bucket, retries."""
    policy = policy or RetryPolicy(window_seconds=FIGMA_WINDOW_SECONDS)
    return ApiSession(
        service="figma",
        base_url=api_base,
        rewrite_prefixes=(FIGMA_PUBLIC_PREFIX,),
        auth_headers={"X-Figma-Token": token},
        timeout=timeout,
        bucket=TokenBucket(max_requests_per_minute, FIGMA_WINDOW_SECONDS),
        policy=policy,
        observer=observer,
    )


class FigmaAPI:
    """Typed access to the Figma routes syncd uses (one method per route, one request each)."""

    def __init__(self, session: ApiSession) -> None:
        self.session = session

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.session.get(FIGMA_PUBLIC_PREFIX + path, params=params)
        try:
            answer = response.json()
        except (ValueError, requests.JSONDecodeError):
            raise ApiError(f"figma GET {path}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise ApiError(f"figma GET {path}: expected a JSON object, got {type(answer).__name__}")
        return answer

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.session.post(FIGMA_PUBLIC_PREFIX + path, json=body)
        try:
            answer = response.json()
        except (ValueError, requests.JSONDecodeError):
            raise ApiError(f"figma POST {path}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise ApiError(f"figma POST {path}: expected a JSON object")
        return answer

    # -- files --------------------------------------------------------------------------

    def file_meta(self, key: str) -> dict[str, Any]:
        """``GET /v1/files/{key}/meta`` (Tier 2): the ``file`` object (name, version, …)."""
        path = f"/v1/files/{quote(key, safe='')}/meta"
        meta = self._get(path).get("file")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise ApiError(f"figma GET {path}: no 'file' object with a name in the answer")
        return meta

    def versions(self, key: str) -> list[dict[str, Any]]:
        """``GET /v1/files/{key}/versions``: the newest page only (up to 50), newest first."""
        path = f"/v1/files/{quote(key, safe='')}/versions"
        versions = self._get(path, {"page_size": str(VERSIONS_PAGE_SIZE)}).get("versions")
        if not isinstance(versions, list) or not all(
            isinstance(item, dict) and item.get("id") is not None for item in versions
        ):
            raise ApiError(f"figma GET {path}: 'versions' is not a list of versions with ids")
        return sorted(versions, key=lambda item: str(item.get("created_at") or ""), reverse=True)

    def comments(self, key: str) -> list[dict[str, Any]]:
        """``GET /v1/files/{key}/comments``: every comment of the file (replies included)."""
        path = f"/v1/files/{quote(key, safe='')}/comments"
        comments = self._get(path).get("comments")
        if not isinstance(comments, list) or not all(
            isinstance(item, dict) and item.get("id") is not None for item in comments
        ):
            raise ApiError(f"figma GET {path}: 'comments' is not a list of comments with ids")
        return comments

    def file_tree(self, key: str, depth: int = 2) -> dict[str, Any]:
        """``GET /v1/files/{key}?depth=N`` (Tier 1, expensive): pages and their top-level nodes."""
        path = f"/v1/files/{quote(key, safe='')}"
        tree = self._get(path, {"depth": str(depth)})
        document = tree.get("document")
        if not isinstance(document, dict) or not isinstance(document.get("children", []), list):
            raise ApiError(f"figma GET {path}: no 'document' with children in the answer")
        return tree

    def file_nodes(self, key: str, node_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """``GET /v1/files/{key}/nodes?ids=…&depth=1`` (Tier 1): one request for all `node_ids`.

        Each id Figma answered maps to its node (the ``document``), or to None when Figma says
        the node does not exist in the file (its ``null``). An id absent from the answer is
        absent from the result: nothing is known about it.
        """
        path = f"/v1/files/{quote(key, safe='')}/nodes"
        answer = self._get(path, {"ids": ",".join(node_ids), "depth": "1"})
        nodes = answer.get("nodes")
        if not isinstance(nodes, dict):
            raise ApiError(f"figma GET {path}: no 'nodes' object in the answer")
        result: dict[str, dict[str, Any] | None] = {}
        for node_id, entry in nodes.items():
            if entry is None:
                result[str(node_id)] = None
            elif isinstance(entry, dict) and isinstance(entry.get("document"), dict):
                result[str(node_id)] = entry["document"]
            else:
                raise ApiError(f"figma GET {path}: node {node_id!r} is neither null nor a node")
        return result

    # -- webhooks V2 --------------------------------------------------------------------

    def create_webhook(
        self,
        *,
        event_type: str,
        context: str,
        context_id: str,
        endpoint: str,
        passcode: str,
        description: str = "",
    ) -> dict[str, Any]:
        """``POST /v2/webhooks`` (Tier 2): one webhook on a team, project or file."""
        body = {
            "event_type": event_type,
            "context": context,
            "context_id": context_id,
            "endpoint": endpoint,
            "passcode": passcode,
            "description": description,
        }
        answer = self._post("/v2/webhooks", body)
        if "id" not in answer:
            raise ApiError("figma POST /v2/webhooks: no webhook id in the answer")
        return answer
