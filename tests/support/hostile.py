"""Hostile HTTP requests for the fuzz suite (issue 9), shared by the in-process tests
(`tests/web/test_fuzz.py`, `tests/daemon/test_fuzz_daemon.py`), the run against `syncd run`
(`tests/daemon/test_fuzz_run.py`) and `bench/fuzz_http.py`.

- `Target`: what a hostile client may know (the routes' secrets when it plays a credentialed
  one, the ids in the store);
- `hostile_requests(target)`: a hypothesis strategy of `HostileRequest`s of every kind the
  issue lists, on every route, with and without credentials: random and invalid-UTF-8 bodies,
  deep nesting and 5,000-digit numbers, ``NaN``, lone surrogates (escaped and raw), valid
  Trello deliveries with one value made hostile (signed right, wrong or not at all), Figma
  events likewise (right passcode, wrong, missing, nested, twice), odd headers (raw bytes),
  query strings (dates at the ends of time, garbage, ``%ff``, ``%00``), clients that
  disconnect mid-body;
- `AsgiClient`: an in-process ASGI client that sends exactly those bytes (httpx would refuse
  some headers), and `send_http` the same over a real socket;
- `problems(request, answer)`: what an answer must never be (a 5xx, a refusal that is not one
  line, …).

Every text a delivery carries that a refused delivery might leave behind holds `MARKER`, so a
test can look for it in the store.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from hypothesis import strategies as st

MARKER = "zqHOSTILEqz"
TRELLO_PATH = "/webhooks/trello"
FIGMA_PATH = "/webhooks/figma"
ROUTES = (
    ("HEAD", TRELLO_PATH),
    ("POST", TRELLO_PATH),
    ("POST", FIGMA_PATH),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/report"),
    ("GET", "/"),
    ("GET", "/login"),
    ("GET", "/auth/callback"),
    ("POST", "/logout"),
    ("GET", "/logged-out"),
)


@dataclass(frozen=True)
class Target:
    """What the hostile client knows: secrets (to play a credentialed client) and ids."""

    callback_url: str  # public_url + /webhooks/trello, signed over
    trello_secret: str
    figma_passcode: str
    admin_token: str | None
    board_id: str
    short_link: str
    card_ids: tuple[str, ...]
    list_ids: tuple[str, ...]
    figma_key: str
    date: str = "2026-11-30T08:00:00.000Z"  # the date of the actions it makes up


@dataclass(frozen=True)
class HostileRequest:
    kind: str  # what was tried, e.g. "trello signed mutated"
    method: str
    path: str
    query: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    disconnect_after: int | None = None  # the client goes away after this many body bytes
    must_refuse: bool = False  # a delivery that must never be accepted (4xx)
    action_id: str | None = None  # the Trello action id it carries, when it has one

    def describe(self) -> str:
        return (
            f"{self.kind}: {self.method} {self.path}?{self.query[:120]!r} "
            f"headers={[(k, v[:60]) for k, v in self.headers]!r} body={self.body[:300]!r}"
            + (f" (disconnect after {self.disconnect_after})" if self.disconnect_after else "")
        )


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


# -- values -------------------------------------------------------------------------------

LONE_SURROGATE = "\ud800"
_ascii_words = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)

hostile_texts = st.one_of(
    st.text(max_size=40).map(lambda t: MARKER + t),
    st.just(MARKER + "\x00nul"),
    st.just(MARKER + LONE_SURROGATE),
    st.just("\udfff" + MARKER),
    st.just(MARKER + "<script>alert(1)</script>&amp;"),
    st.just(MARKER + "x" * 20_000),
    st.just(MARKER + "\n\r\t\u2028\u202e"),
    st.just(""),
)
# Texts a checked model keeps: odd but valid (the values of the "benign" deliveries).
odd_valid_texts = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60
    ).map(lambda t: MARKER + t),
    st.just(MARKER + "<img src=x onerror=alert(1)> & \u202e\u2028 😀 Drôme"),
    st.just(MARKER + "y" * 16_000),
)
hostile_dates = st.sampled_from(
    [
        "not a date",
        "2026-13-45T99:99:99Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "+10000-01-01T00:00:00Z",
        "2026-11-30T08:00:00.000Z\x00",
        "",
        "9" * 40,
        "2999-01-01T00:00:00.000Z",  # far ahead: refused for an action's own date
    ]
)
hostile_numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(10**300),
)
hostile_ids = st.one_of(
    st.sampled_from(["", "x", "0" * 23, "g" * 24, "0" * 25, "0" * 23 + LONE_SURROGATE]),
    st.text(max_size=30).map(lambda t: MARKER + t),
)
hostile_scalars = st.one_of(
    hostile_texts, hostile_dates, hostile_numbers, hostile_ids, st.booleans(), st.none()
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(_ascii_words, children, max_size=3),
    ),
    max_leaves=6,
)

# Raw JSON tokens json.dumps cannot write, spliced in place of a placeholder string; each with
# whether no parser of a delivery may accept it (nesting past 200 levels, a number of more than
# 4,300 digits, NaN/Infinity, a lone surrogate, bytes that are not UTF-8).
_PLACEHOLDER = "\u0001PLACEHOLDER\u0001"
raw_tokens = st.one_of(
    st.integers(min_value=150, max_value=20_000).map(lambda n: (b"[" * n + b"]" * n, n > 200)),
    st.integers(min_value=150, max_value=5_000).map(
        lambda n: (b'{"a":' * n + b"1" + b"}" * n, n > 200)
    ),
    st.integers(min_value=20, max_value=6_000).map(lambda n: (b"9" * n, n > 4_300)),
    st.integers(min_value=20, max_value=6_000).map(lambda n: (b"-0." + b"1" * n + b"e-99", False)),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity"]).map(lambda t: (t, True)),
    st.sampled_from([b"1e400", b"-1e400", b"1E999999999"]).map(lambda t: (t, False)),
    st.sampled_from([b'"\\ud800"', b'"\\udc00x"', b'"\xed\xa0\x80"', b'"\xff"']).map(
        lambda t: (t, True)
    ),
    st.sampled_from([b'"\\u0000"', b'"\\ud83d\\ude00"', b"true", b"null", b"{}", b"[]"]).map(
        lambda t: (t, False)
    ),
)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _encode(value: Any, ascii_only: bool, raw: bytes | None) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    body = text.encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8
    if raw is not None:
        token = json.dumps(_PLACEHOLDER, ensure_ascii=ascii_only).encode()
        body = body.replace(token, raw, 1)
    return body


# -- mutating a valid document ------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> None:
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@dataclass(frozen=True)
class Mutated:
    document: dict[str, Any]
    raw: bytes | None  # a raw token spliced in place of the placeholder
    refused: bool  # whether no parser may accept the result


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any]) -> Mutated:
    """`document` with one value made hostile, a key removed or added, or a raw token
    (deep nesting, a long number, NaN, a lone surrogate) spliced in."""
    document = json.loads(json.dumps(document))
    path = draw(st.sampled_from(_paths(document)))
    how = draw(st.sampled_from(["value", "value", "delete", "add", "raw"]))
    if how == "delete":
        _set(document, path, None, delete=True)
        return Mutated(document, None, False)
    if how == "raw":
        raw, refused = draw(raw_tokens)
        _set(document, path, _PLACEHOLDER)
        return Mutated(document, raw, refused)
    value = draw(hostile_values)
    if how == "add":
        container = document
        for part in path[:-1]:
            container = container[part]
        if isinstance(container, dict):
            container[draw(_ascii_words)] = value
    else:
        _set(document, path, value)
    return Mutated(document, None, _has_lone_surrogate(value))


# -- Trello -------------------------------------------------------------------------------


def trello_signature(secret: str, body: bytes, callback_url: str) -> str:
    mac = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def action_id(counter: int) -> str:
    """A 24-hex action id (Trello's ObjectId shape), distinct per counter."""
    return f"{0x6500_0000 + counter:08x}" + f"{counter:016x}"


def trello_action(target: Target, kind: str, counter: int, date: str) -> dict[str, Any]:
    """A well-formed action of `kind` about the target's board, as Trello sends it."""
    card = target.card_ids[counter % len(target.card_ids)]
    lists = target.list_ids
    board = {"id": target.board_id, "name": "board", "shortLink": target.short_link}
    data: dict[str, Any] = {"board": board, "card": {"id": card, "name": "card", "idShort": 3}}
    if kind == "move":
        data["card"]["idList"] = lists[counter % len(lists)]
        data["old"] = {"idList": lists[(counter + 1) % len(lists)]}
        data["listAfter"] = {"id": lists[counter % len(lists)], "name": "after"}
    elif kind == "desc":
        data["card"]["desc"] = "description"
        data["old"] = {"desc": ""}
    elif kind == "due":
        data["card"]["due"] = "2027-01-15T12:00:00.000Z"
        data["old"] = {"due": None}
    elif kind == "pos":
        data["card"]["pos"] = 16384.5
        data["old"] = {"pos": 16384}
    elif kind == "check":
        data["checklist"] = {"id": "e" * 24, "name": "Actions prioritaires"}
        data["checkItem"] = {"id": "f" * 24, "name": "item", "state": "complete"}
    elif kind == "custom":
        data["customField"] = {"id": "a1" * 12, "name": "Statut", "type": "text"}
        data["customFieldItem"] = {
            "id": "a2" * 12,
            "idCustomField": "a1" * 12,
            "idModel": card,
            "modelType": "card",
            "value": {"number": "12.5"},
        }
        data["old"] = {"value": None}
    elif kind == "comment":
        data["text"] = "a comment"
    return {
        "id": action_id(counter),
        "idMemberCreator": "b0" * 12,
        "type": {
            "move": "updateCard",
            "desc": "updateCard",
            "due": "updateCard",
            "pos": "updateCard",
            "check": "updateCheckItemStateOnCard",
            "custom": "updateCustomFieldItem",
            "comment": "commentCard",
        }.get(kind, kind),
        "date": date,
        "data": data,
        "memberCreator": {"id": "b0" * 12, "fullName": "Camille", "username": "cm"},
    }


TRELLO_KINDS = ("move", "desc", "due", "pos", "check", "custom", "comment", "someFutureType")
_trello_signing = st.sampled_from(["right", "right", "right", "wrong", "missing", "garbage"])


def _signature_header(
    draw: st.DrawFn, target: Target, body: bytes, signing: str
) -> list[tuple[bytes, bytes]]:
    if signing == "missing":
        return []
    if signing == "right":
        value = trello_signature(target.trello_secret, body, target.callback_url).encode()
    elif signing == "wrong":
        value = trello_signature("not-the-secret", body, target.callback_url).encode()
    else:
        value = draw(header_values)
    return [(b"x-trello-webhook", value)]


@st.composite
def trello_deliveries(draw: st.DrawFn, target: Target) -> HostileRequest:
    """POST /webhooks/trello: a valid action with one thing made hostile, random bytes, or raw
    hostile JSON; signed right (most of the time), wrong, not at all, or with garbage."""
    counter = draw(st.integers(min_value=1, max_value=2**31))
    kind = draw(st.sampled_from(TRELLO_KINDS))
    payload: Any = {
        "action": trello_action(target, kind, counter, target.date),
        "model": {"id": target.board_id, "name": "board"},
        "webhook": {"id": "c0" * 12, "idModel": target.board_id, "active": True},
    }
    shape = draw(
        st.sampled_from(
            ["mutated", "mutated", "mutated", "benign", "benign", "bytes", "raw", "value"]
        )
    )
    refused = shape not in ("mutated", "benign")  # bytes, a bare token or value: no delivery
    if shape == "benign":  # valid, with odd texts: accepted, and its values kept as they are
        data = payload["action"]["data"]
        data["card"]["name"] = draw(odd_valid_texts)
        if "desc" in data["card"]:
            data["card"]["desc"] = draw(odd_valid_texts)
        if kind == "comment":
            data["text"] = draw(odd_valid_texts)
        body = _encode(payload, draw(st.booleans()), None)
    elif shape == "mutated":
        change = draw(mutated(payload))
        payload, refused = change.document, change.refused
        body = _encode(payload, draw(st.booleans()), change.raw)
    elif shape == "bytes":
        body = draw(st.binary(max_size=2048))
    elif shape == "raw":
        body = draw(raw_tokens)[0]
    else:
        payload = draw(hostile_values)
        body = _encode(payload, draw(st.booleans()), None)
    signing = draw(_trello_signing)
    headers = [
        (b"content-type", b"application/json"),
        *_signature_header(draw, target, body, signing),
    ]
    headers += draw(extra_headers)
    action = payload.get("action") if isinstance(payload, dict) else None
    carried = action.get("id") if isinstance(action, dict) else None
    return HostileRequest(
        kind=f"trello {signing} {shape}",
        method="POST",
        path=TRELLO_PATH,
        headers=tuple(headers),
        body=body,
        disconnect_after=draw(_disconnects(body)),
        must_refuse=signing != "right" or refused,
        action_id=carried if isinstance(carried, str) else None,
    )


# -- Figma --------------------------------------------------------------------------------


@st.composite
def figma_deliveries(draw: st.DrawFn, target: Target) -> HostileRequest:
    """POST /webhooks/figma: an event with one thing made hostile, a passcode right, wrong,
    missing, nested, given twice or holding a lone surrogate; random bytes; raw hostile JSON."""
    event: dict[str, Any] = {
        "event_type": draw(
            st.sampled_from(["FILE_UPDATE", "FILE_VERSION_UPDATE", "FILE_COMMENT", "PING", "X"])
        ),
        "file_key": target.figma_key,
        "file_name": "Maquettes",
        "timestamp": "2026-11-30T08:00:00Z",
        "webhook_id": "123",
        "triggered_by": {"id": "1", "handle": "camille"},
    }
    passcode = draw(st.sampled_from(["right", "right", "wrong", "missing", "surrogate"]))
    if passcode == "right":
        event["passcode"] = target.figma_passcode
    elif passcode == "wrong":
        event["passcode"] = "nope"
    elif passcode == "surrogate":
        event["passcode"] = target.figma_passcode + LONE_SURROGATE
    shape = draw(st.sampled_from(["mutated", "mutated", "nested", "twice", "bytes", "raw"]))
    refused = shape != "mutated"
    if shape == "mutated":
        change = draw(mutated(event))
        refused = change.refused
        body = _encode(change.document, draw(st.booleans()), change.raw)
    elif shape == "nested":  # the right passcode only inside another object
        event.pop("passcode", None)
        event["triggered_by"] = {"passcode": target.figma_passcode}
        body = _encode(event, False, None)
    elif shape == "twice":  # the right one first, a wrong one last (the parser keeps the last)
        body = _encode(event, False, None)
        body = (
            b'{"passcode": %s, ' % json.dumps(target.figma_passcode).encode()
            + body[1:-1]
            + b', "passcode": "nope"}'
        )
    elif shape == "bytes":
        body = draw(st.binary(max_size=1024))
    else:
        body = draw(raw_tokens)[0]
    headers = [(b"content-type", b"application/json"), *draw(extra_headers)]
    return HostileRequest(
        kind=f"figma {passcode} {shape}",
        method="POST",
        path=FIGMA_PATH,
        headers=tuple(headers),
        body=body,
        disconnect_after=draw(_disconnects(body)),
        must_refuse=passcode != "right" or refused,
    )


# -- headers, query strings, other routes -------------------------------------------------

_token_chars = string.ascii_lowercase + string.digits + "-_"
header_names = st.text(_token_chars, min_size=1, max_size=20).map(str.encode)
# What an HTTP/1.1 server lets through in a value: visible ASCII, obs-text, tabs inside.
header_values = st.binary(max_size=80).map(
    lambda raw: bytes(b for b in raw if b == 9 or 32 <= b != 127).strip(b" \t")
)
extra_headers = st.lists(
    st.one_of(
        st.tuples(header_names, header_values),
        st.tuples(
            st.sampled_from(
                [
                    b"host",
                    b"cookie",
                    b"authorization",
                    b"content-type",
                    b"accept",
                    b"x-forwarded-for",
                    b"x-forwarded-proto",
                    b"accept-language",
                ]
            ),
            header_values,
        ),
    ),
    max_size=3,
)


def _disconnects(body: bytes) -> st.SearchStrategy[int | None]:
    if len(body) < 2:
        return st.none()
    return st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(body) - 1))


query_values = st.one_of(
    hostile_dates,
    st.sampled_from(["fr", "en", "de", "FR", "", "fr\x00", "%ff", "%00", "%", "%zz", "\u00e9"]),
    st.sampled_from(["2026-11-30", "2026-11-30T08:00:00+14:00", "-0001-01-01", "2026-W48"]),
    st.text(max_size=30),
    st.just("x" * 5000),
)
query_names = st.one_of(
    st.sampled_from(["since", "at", "lang", "code", "state", "error"]), _ascii_words
)


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    """A query string: hostile names and values, percent-encoded, raw, or broken."""
    parts = []
    for name, value in draw(st.lists(st.tuples(query_names, query_values), max_size=4)):
        encoded = draw(st.booleans())
        text_value = quote(value.encode("utf-8", "surrogatepass"), safe="") if encoded else value
        parts.append(f"{quote(name)}={text_value}")
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["%ff=%fe", "since=%ff", "lang=%00", "&&", "=", "a"])))
    return "&".join(parts).encode("utf-8", "surrogatepass")


@st.composite
def reader_requests(draw: st.DrawFn, target: Target) -> HostileRequest:
    """Every other route, with hostile query strings and headers; with the admin bearer, a
    wrong one, a garbage cookie, or nothing."""
    method, path = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 9)) == 0:  # a route that does not exist, or a method not allowed
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]))
        path = draw(st.sampled_from([path, "/api", "/api/report/x", "/webhooks", "/%2e%2e/"]))
    credentials = draw(st.sampled_from(["none", "bearer", "bad bearer", "cookie"]))
    headers: list[tuple[bytes, bytes]] = []
    if credentials == "bearer" and target.admin_token:
        headers.append((b"authorization", b"Bearer " + target.admin_token.encode()))
    elif credentials == "bad bearer":
        headers.append((b"authorization", b"Bearer " + draw(header_values)))
    elif credentials == "cookie":
        headers.append((b"cookie", b"syncd_session=" + draw(header_values)))
    body = draw(st.binary(max_size=256)) if method in ("POST", "PUT", "PATCH") else b""
    return HostileRequest(
        kind=f"route {method} {path} {credentials}",
        method=method,
        path=path,
        query=draw(query_strings()),
        headers=tuple(headers + draw(extra_headers)),
        body=body,
        disconnect_after=draw(_disconnects(body)),
    )


def hostile_requests(target: Target) -> st.SearchStrategy[HostileRequest]:
    """Every kind of hostile request the issue lists, on every route."""
    return st.one_of(trello_deliveries(target), figma_deliveries(target), reader_requests(target))


# -- sending ------------------------------------------------------------------------------


class AsgiClient:
    """Sends a `HostileRequest` to an ASGI app in this process, bytes exactly as given."""

    def __init__(self, app: Any, portal: Any) -> None:
        self.app = app
        self.portal = portal

    def send(self, request: HostileRequest) -> Answer | None:
        """The answer, or None when the client disconnected before it."""
        return self.portal.call(self._send, request)

    async def _send(self, request: HostileRequest) -> Answer | None:
        raw_path = request.path.encode("ascii")
        headers = [(k.lower(), v) for k, v in request.headers]
        if request.method in ("POST", "PUT", "PATCH") and request.disconnect_after is None:
            headers.append((b"content-length", str(len(request.body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": unquote(request.path),
            "raw_path": raw_path,
            "query_string": request.query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }
        body = request.body
        cut = request.disconnect_after
        chunks = (
            [body[:cut]]
            if cut is not None
            else [body[i : i + 4096] for i in range(0, len(body), 4096)]
        )
        chunks = chunks or [b""]
        sent = 0
        answer = Answer(status=0)
        done = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent < len(chunks):
                chunk = chunks[sent]
                sent += 1
                more = sent < len(chunks) or cut is not None
                return {"type": "http.request", "body": chunk, "more_body": more}
            if cut is not None or done:
                return {"type": "http.disconnect"}
            await asyncio.sleep(3600)  # a waiting client: never reached by a finished app
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = list(message.get("headers") or [])
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")

        await self.app(scope, receive, send)
        done = True
        if answer.status == 0:
            return None
        return answer


def send_http(
    host: str, port: int, request: HostileRequest, timeout: float = 30.0
) -> Answer | None:
    """The same request over a real socket (HTTP/1.1, one connection); None when the client
    disconnected on purpose. Raises OSError when the server does not answer."""
    target = request.path + ("?" + request.query.decode("latin-1") if request.query else "")
    lines = [f"{request.method} {target} HTTP/1.1".encode("latin-1")]
    names = {k.lower() for k, _ in request.headers}
    if b"host" not in names:
        lines.append(f"Host: {host}:{port}".encode())
    lines += [k + b": " + v for k, v in request.headers]
    if request.disconnect_after is None or request.body:
        lines.append(b"Content-Length: " + str(len(request.body)).encode())
    lines.append(b"Connection: close")
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if request.disconnect_after is not None:
            sock.sendall(head + request.body[: request.disconnect_after])
            return None
        sock.sendall(head + request.body)
        received = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head_bytes, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.split(b"\r\n")
    parts = status_line.split(b" ")
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"no HTTP answer: {bytes(received[:200])!r}")
    headers = [tuple(line.split(b": ", 1)) for line in header_lines if b": " in line]
    return Answer(int(parts[1]), headers, body)  # type: ignore[arg-type]


# -- what an answer must never be ---------------------------------------------------------


def problems(request: HostileRequest, answer: Answer | None) -> list[str]:
    """Why `answer` is wrong for `request` (empty: fine)."""
    if answer is None:
        return []
    found = []
    if answer.status >= 500:
        found.append(f"answered {answer.status}")
    if request.path in (TRELLO_PATH, FIGMA_PATH) and request.method == "POST":
        if request.must_refuse and answer.status < 400:
            found.append(f"a delivery that must be refused was answered {answer.status}")
        if 400 <= answer.status < 500 and answer.status != 404 and answer.status != 405:
            found += _one_line_refusal(answer, "reason")
    elif answer.status == 400 and (answer.header(b"content-type") or b"").startswith(
        b"application/json"
    ):
        found += _one_line_refusal(answer, "detail")
    return found


def _one_line_refusal(answer: Answer, key: str) -> list[str]:
    if not (answer.header(b"content-type") or b"").startswith(b"application/json"):
        # refused by the HTTP server itself (malformed HTTP, before the app): one short line
        if b"\n" in answer.body.strip() or len(answer.body) > 300:
            return [f"server refusal is not one line: {answer.body[:200]!r}"]
        return []
    try:
        reason = json.loads(answer.body)[key]
    except (ValueError, KeyError, TypeError):
        return [f"refusal is not JSON with {key!r}: {answer.body[:200]!r}"]
    if not isinstance(reason, str) or "\n" in reason or len(reason) > 300:
        return [f"refusal is not one line: {reason!r:.300}"]
    return []


def traceback_events(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Captured structlog events that carry a traceback or sit above WARNING."""
    return [
        event
        for event in events
        if "exc_info" in event
        or "exception" in event
        or "stack" in event
        or event.get("log_level") in ("error", "critical", "exception")
    ]
