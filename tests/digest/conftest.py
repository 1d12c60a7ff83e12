"""Real local receivers for the digest: a Mattermost-style incoming-webhook server and an SMTP
server (aiosmtpd), both on 127.0.0.1 with a port of their own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Mattermost:
    """Incoming webhooks at ``/hooks/<token>``; a token in `failing` answers 500."""

    port: int = 0
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)

    def url(self, token: str) -> str:
        return f"mmost://127.0.0.1:{self.port}/{token}"

    def texts(self, token: str) -> list[str]:
        return [body["text"] for path, body in self.posts if path == f"/hooks/{token}"]


@pytest.fixture
def mattermost() -> Iterator[Mattermost]:
    state = Mattermost()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            token = self.path.rsplit("/", 1)[-1]
            state.attempts[token] = state.attempts.get(token, 0) + 1
            if token in state.failing:
                self.send_response(500)
                self.end_headers()
                return
            state.posts.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


class _Controller(Controller):
    """aiosmtpd's controller on port 0: learn the real port before its readiness check."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Smtp:
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    def url(self, to: str = "equipe@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=syncd@example.org&to={to}&mode=insecure"


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    state = Smtp()

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            state.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
            return "250 OK"

    controller = _Controller(Handler(), hostname="127.0.0.1", port=0)
    controller.start()
    state.port = controller.port
    yield state
    controller.stop()
