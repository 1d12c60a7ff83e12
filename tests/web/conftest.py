"""Fixtures of the login tests: syncd's app over a store filled by hand, served by uvicorn on
127.0.0.1 (a free port), the certified `oidc-provider` (Node, ``tests/web/oidc/``) and a tiny
hand-made provider (Authlib's JOSE, joserfc) that issues the tokens a real provider never would:
signed with another key, for another audience or issuer, expired, with a wrong nonce."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey

from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    AuthConfig,
    BoardConfig,
    Secrets,
    ServerConfig,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.daemon.health import SyncHealth
from syncd.metrics import Metrics
from syncd.rules.governance import Rules
from syncd.trello.rows import snapshot_batch
from syncd.trello.schema import TrelloAction
from syncd.trello.webhooks import trello_callback_url, trello_signature
from syncd.web.app import create_app
from syncd.web.context import WebContext

OIDC_DIR = Path(__file__).parent / "oidc"
SESSION_SECRET = "test-session-secret-0123456789abcdef"
ALLOWED = "camille.martin@beta.gouv.fr"

# -- syncd served over HTTP -----------------------------------------------------------------

TRELLO_SECRET = "trello-app-secret"
CONSORTIUM = "oSmy09cz"
BOARD_ID = "b" * 23 + "1"
DROME = "c" * 23 + "1"
LIST_TODO, LIST_DONE = "d" * 23 + "1", "d" * 23 + "2"


def _snapshot() -> dict[str, Any]:
    """A small consortium board: one département card with its priority checklist."""
    return {
        "id": BOARD_ID,
        "shortLink": CONSORTIUM,
        "name": "lapins-consortium-départements",
        "url": f"https://trello.com/b/{CONSORTIUM}",
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        "lists": [{"id": LIST_TODO, "name": "Départements", "pos": 1}],
        "labels": [],
        "members": [{"id": "m1", "fullName": "Camille Martin", "username": "cm"}],
        "customFields": [],
        "cards": [
            {
                "id": DROME,
                "idBoard": BOARD_ID,
                "idList": LIST_TODO,
                "name": "Drôme",
                "desc": "",
                "idLabels": [],
                "idMembers": ["m1"],
                "closed": False,
                "pos": 1,
                "dateLastActivity": "2026-11-01T00:00:00.000Z",
            }
        ],
        "checklists": [
            {
                "id": "k1",
                "idCard": DROME,
                "name": "Actions prioritaires",
                "checkItems": [{"id": "i1", "name": "Ouvrir les RDV", "state": "incomplete"}],
            }
        ],
    }


@dataclass
class RecordingIntake:
    """The delivery intake: records the verified deliveries the web layer hands over."""

    trello: list[str] = field(default_factory=list)

    def offer_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> bool:
        self.trello.append(action.id)
        return True

    def queue_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> Future[bool]:
        queued: Future[bool] = Future()
        queued.set_result(self.offer_trello(action, board, board_id))
        return queued

    def offer_figma(self, key: str, event: str) -> None:
        pass


class SyncdServer:
    """`create_app` over a store filled by hand (no daemon, no sandbox), served by uvicorn on
    127.0.0.1:<free port>. The port is known first, so the redirect URI can be registered with
    a provider before the app starts."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.intake = RecordingIntake()
        self.settings: Settings | None = None
        self.store: Store | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def callback(self) -> str:
        return self.url + "/auth/callback"

    def start(
        self,
        *,
        host: str = "127.0.0.1",
        auth: AuthConfig | None = None,
        public_url: str | None = None,
        **secrets_env: str | None,
    ) -> SyncdServer:
        """Serve; `host` is the configured ``server.host`` (the socket stays on 127.0.0.1);
        `public_url`: as behind a proxy (default: the URL served)."""
        env = {"TRELLO_API_SECRET": TRELLO_SECRET, **secrets_env}
        self.settings = Settings(
            store=StoreConfig(url=f"sqlite:///{self.tmp_path / 'store.db'}"),
            trello=TrelloConfig(boards=(BoardConfig(id=CONSORTIUM, role="consortium"),)),
            governance=Rules(departments=("26",)),
            server=ServerConfig(host=host, port=0, public_url=public_url or self.url),
            auth=auth or AuthConfig(),
            secrets=Secrets(**{k: v for k, v in env.items() if v is not None}),
        )
        self.store = Store(self.settings.store.url)
        now = utc_iso(datetime.now(UTC))
        self.store.write_board(
            snapshot_batch(_snapshot(), board_ref=CONSORTIUM, role="consortium", observed_at=now)
        )
        clock = lambda: datetime.now(UTC)  # noqa: E731
        context = WebContext(
            settings=self.settings,
            store=self.store,
            metrics=Metrics(),
            health=SyncHealth(self.settings, self.store, clock=clock),
            intake=self.intake,
            clock=clock,
        )
        config = uvicorn.Config(
            create_app(context),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self._server.started, "uvicorn did not start"
        return self

    def signed_delivery(self) -> tuple[bytes, dict[str, str]]:
        """A Trello webhook delivery for the board in the store, signed as Trello signs."""
        assert self.settings is not None
        action = {
            "id": "a" * 24,
            "type": "updateCard",
            "date": "2026-11-30T08:00:00.000Z",
            "data": {
                "board": {"id": BOARD_ID, "shortLink": CONSORTIUM},
                "card": {"id": DROME, "idList": LIST_TODO},
            },
        }
        body = json.dumps({"action": action, "model": {"id": BOARD_ID}}).encode()
        signature = trello_signature(TRELLO_SECRET, body, trello_callback_url(self.settings))
        return body, {"X-Trello-Webhook": signature, "Content-Type": "application/json"}

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        if self.store is not None:
            self.store.close()
        self.socket.close()


@pytest.fixture
def syncd_server(tmp_path: Path) -> Iterator[Callable[[], SyncdServer]]:
    """A factory of `SyncdServer` (each in its own folder), all stopped at the end."""
    servers: list[SyncdServer] = []

    def make() -> SyncdServer:
        folder = tmp_path / f"syncd-{len(servers)}"
        folder.mkdir()
        servers.append(SyncdServer(folder))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


# -- the certified provider (Node) -----------------------------------------------------------


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js with tests/web/oidc's packages (`npm ci` once, under a lock; CI runs it too)."""
    binary, npm = shutil.which("node"), shutil.which("npm")
    if binary is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI")
        pytest.skip("Node.js not installed (needed for the oidc-provider tests)")
    installed = OIDC_DIR / "node_modules" / "oidc-provider" / "package.json"
    with (OIDC_DIR / ".npm-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed.exists():
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=OIDC_DIR,
                env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                message = "npm ci in tests/web/oidc failed: " + result.stderr.strip()[-500:]
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
    return binary


class NodeProvider:
    """`tests/web/oidc/provider.mjs` on 127.0.0.1; clients registered through DCR (RFC 7591)."""

    def __init__(self, node: str, log: Path, *, email_in_id_token: bool = False) -> None:
        env = {**os.environ, "OIDC_EMAIL_IN_ID_TOKEN": "1" if email_in_id_token else "0"}
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [node, "provider.mjs"],
            cwd=OIDC_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise AssertionError(f"oidc-provider did not start: {log.read_text()[-2000:]}")
        self.issuer: str = json.loads(line)["issuer"]

    def register(self, server: SyncdServer, **metadata: Any) -> tuple[str, str]:
        """Register syncd like an operator would: its redirect and post-logout URIs."""
        body = {
            "redirect_uris": [server.callback],
            "post_logout_redirect_uris": [server.url + "/logged-out"],
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            **metadata,
        }
        response = httpx.post(self.issuer + "/reg", json=body, timeout=10)
        assert response.status_code == 201, response.text
        client = response.json()
        return client["client_id"], client["client_secret"]

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log_file.close()


@pytest.fixture
def node_provider(node: str, tmp_path: Path) -> Iterator[Callable[..., NodeProvider]]:
    started: list[NodeProvider] = []

    def start(**options: Any) -> NodeProvider:
        started.append(NodeProvider(node, tmp_path / f"provider-{len(started)}.log", **options))
        return started[-1]

    yield start
    for provider in started:
        provider.stop()


# -- the hand-made provider (joserfc) --------------------------------------------------------


@dataclass
class Forge:
    """How the next ID token / userinfo answer differs from a correct one."""

    key: str = "good"  # "good", "other" (same kid, another key), "unknown_kid"
    claims: dict[str, Any] = field(default_factory=dict)  # overrides, e.g. {"aud": "x"}
    omit: tuple[str, ...] = ()
    email_in_id_token: bool = True
    userinfo: str = "json"  # "json", "jwt", "jwt_other_key"
    userinfo_claims: dict[str, Any] = field(default_factory=dict)


@cache
def _mini_keys() -> tuple[RSAKey, RSAKey, RSAKey]:
    """The provider's key, another key with the same kid, a key of an unknown kid (made once)."""
    kid = MiniProvider.KID
    return (
        RSAKey.generate_key(2048, parameters={"kid": kid}, private=True),
        RSAKey.generate_key(2048, parameters={"kid": kid}, private=True),
        RSAKey.generate_key(2048, parameters={"kid": "stranger"}, private=True),
    )


class MiniProvider:
    """A small OpenID provider on 127.0.0.1: discovery, authorize (auto-approves), token (PKCE
    and client secret checked), userinfo, JWKS, end_session. Each ID token follows `forge`."""

    CLIENT_ID = "syncd-test"
    CLIENT_SECRET = "mini-client-secret"
    KID = "mini-1"

    def __init__(self) -> None:
        self.key, self.other_key, self.stranger_key = _mini_keys()
        self.forge = Forge()
        self.email = ALLOWED
        self.discovery_issuer: str | None = None  # another issuer named in the discovery
        self.pending: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, str] = {}
        self.requests: list[str] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider.requests.append(f"GET {urlsplit(self.path).path}")
                provider.get(self)

            def do_POST(self) -> None:
                provider.requests.append(f"POST {urlsplit(self.path).path}")
                length = int(self.headers.get("content-length") or 0)
                provider.post(self, self.rfile.read(length).decode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- HTTP --------------------------------------------------------------------------------

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            return _send_json(handler, self.discovery())
        if url.path == "/jwks":
            return _send_json(handler, {"keys": [self.key.as_dict(private=False)]})
        if url.path == "/authorize":
            return self.authorize(handler, query)
        if url.path == "/userinfo":
            return self.userinfo(handler)
        if url.path == "/session/end":
            return _send(handler, 200, b"signed out", "text/plain")
        return _send(handler, 404, b"not found", "text/plain")

    def post(self, handler: BaseHTTPRequestHandler, body: str) -> None:
        if urlsplit(handler.path).path != "/token":
            return _send(handler, 404, b"not found", "text/plain")
        form = {k: v[0] for k, v in parse_qs(body).items()}
        grant = self.pending.pop(form.get("code", ""), None)
        if grant is None:
            return _send_json(handler, {"error": "invalid_grant"}, 400)
        if form.get("client_id") != self.CLIENT_ID or form.get("client_secret") != (
            self.CLIENT_SECRET
        ):
            return _send_json(handler, {"error": "invalid_client"}, 401)
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if digest.decode() != grant["code_challenge"]:
            return _send_json(handler, {"error": "invalid_grant", "error_description": "PKCE"}, 400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return _send_json(handler, {"error": "invalid_grant"}, 400)
        access = secrets.token_urlsafe(24)
        self.tokens[access] = grant["nonce"]
        return _send_json(
            handler,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 600,
                "id_token": self.id_token(grant["nonce"]),
            },
        )

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "userinfo_endpoint": self.issuer + "/userinfo",
            "jwks_uri": self.issuer + "/jwks",
            "end_session_endpoint": self.issuer + "/session/end",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],  # as ProConnect
            "scopes_supported": ["openid", "email"],
        }

    def authorize(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        if (
            query.get("client_id") != self.CLIENT_ID
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or not query.get("nonce")
            or not query.get("state")
        ):
            return _send(handler, 400, b"bad authorization request", "text/plain")
        code = secrets.token_urlsafe(16)
        self.pending[code] = {
            "nonce": query["nonce"],
            "redirect_uri": query["redirect_uri"],
            "code_challenge": query["code_challenge"],
        }
        back = {"code": code, "state": query["state"], "iss": self.issuer}
        handler.send_response(302)
        handler.send_header("Location", query["redirect_uri"] + "?" + urlencode(back))
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return None

    def id_token(self, nonce: str) -> str:
        now = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "agent-42",
            "aud": self.CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        }
        if self.forge.email_in_id_token:
            claims["email"] = self.email
        claims.update(self.forge.claims)
        for name in self.forge.omit:
            claims.pop(name, None)
        key = {"good": self.key, "other": self.other_key, "unknown_kid": self.stranger_key}
        signer = key[self.forge.key]
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)

    def userinfo(self, handler: BaseHTTPRequestHandler) -> None:
        token = handler.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token not in self.tokens:
            return _send(handler, 401, b"", "text/plain")
        claims = {"sub": "agent-42", "email": self.email, **self.forge.userinfo_claims}
        if self.forge.userinfo == "json":
            return _send_json(handler, claims)
        claims |= {"iss": self.issuer, "aud": self.CLIENT_ID}
        signer = self.key if self.forge.userinfo == "jwt" else self.other_key
        text = jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)
        return _send(handler, 200, text.encode(), "application/jwt")


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _send_json(handler: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
    _send(handler, status, json.dumps(payload).encode(), "application/json")


@pytest.fixture
def mini_provider() -> Iterator[MiniProvider]:
    provider = MiniProvider()
    yield provider
    provider.stop()


@pytest.fixture
def mini_syncd(
    mini_provider: MiniProvider, syncd_server: Callable[[], SyncdServer]
) -> Callable[..., SyncdServer]:
    """Start syncd logging in with the hand-made provider; keyword arguments change [auth]
    (``secrets=`` changes the environment secrets)."""

    def start(
        secrets: dict[str, str | None] | None = None,
        public_url: str | None = None,
        **auth: Any,
    ) -> SyncdServer:
        values: dict[str, Any] = {
            "oidc_issuer": mini_provider.issuer,
            "oidc_client_id": mini_provider.CLIENT_ID,
            "allowed_emails": (ALLOWED,),
            **auth,
        }
        env = {
            "SYNCD_OIDC_CLIENT_SECRET": MiniProvider.CLIENT_SECRET,
            "SYNCD_SESSION_SECRET": SESSION_SECRET,
            **(secrets or {}),
        }
        return syncd_server().start(auth=AuthConfig(**values), public_url=public_url, **env)

    return start


@pytest.fixture
def node_syncd(
    node_provider: Callable[..., NodeProvider], syncd_server: Callable[[], SyncdServer]
) -> Callable[..., tuple[SyncdServer, NodeProvider]]:
    """Start the certified provider, register syncd with it (DCR) and start syncd on it;
    ``email_in_id_token`` goes to the provider, other keywords to the client registration."""

    def start(
        *, email_in_id_token: bool = False, **client_metadata: Any
    ) -> tuple[SyncdServer, NodeProvider]:
        provider = node_provider(email_in_id_token=email_in_id_token)
        server = syncd_server()
        client_id, client_secret = provider.register(server, **client_metadata)
        auth = AuthConfig(
            oidc_issuer=provider.issuer, oidc_client_id=client_id, allowed_emails=(ALLOWED,)
        )
        server.start(
            auth=auth,
            SYNCD_OIDC_CLIENT_SECRET=client_secret,
            SYNCD_SESSION_SECRET=SESSION_SECRET,
        )
        return server, provider

    return start
