"""What the login refuses, each with a 4xx and one log line: a tampered or replayed state, ID
tokens a real provider never issues (signed with another key, for another audience or issuer,
expired, with a wrong nonce; made by the hand-made provider of conftest.py), an e-mail not
allowed, a userinfo JWT with a bad signature, forged session cookies. Plus: a provider that is
unreachable or misconfigured is one line at start and a 503 on /login, never a 500."""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import itsdangerous
import pytest
from structlog.testing import capture_logs

from syncd.web import oidc


@contextmanager
def client() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        yield http


def to_callback(http: httpx.Client, server: Any) -> str:
    """/login, then the provider's immediate redirect: the callback URL it sends us to."""
    response = http.get(server.url + "/login")
    assert response.status_code == 302, response.text
    response = http.get(response.headers["location"])
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(server.callback + "?")
    return location


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {name: value}
    return urlunsplit(parts._replace(query=urlencode(query)))


def refusals(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] in ("login refused", "session cookie refused")]


def assert_one_line_refusal(logs: list[dict[str, Any]], *needles: str) -> dict[str, Any]:
    (entry,) = refusals(logs)
    text = " ".join(str(value) for value in entry.values())
    assert "\n" not in text and "Traceback" not in text and "exc_info" not in entry
    for needle in needles:
        assert needle in text, text
    return entry


def test_the_hand_made_provider_logs_in(mini_syncd: Callable[..., Any], mini_provider: Any) -> None:
    """The refusals below differ from this by one thing each."""
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        response = http.get(to_callback(http, server))
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert http.get(server.url + "/api/report").status_code == 200
    assert [e["email_from"] for e in logs if e["event"] == "login"] == ["id_token"]
    assert refusals(logs) == []
    # discovery once at start; per login one token request; the JWKS once (then cached)
    assert mini_provider.requests == [
        "GET /.well-known/openid-configuration",
        "GET /authorize",  # the browser
        "POST /token",  # client_secret_post and PKCE accepted
        "GET /jwks",
    ]
    with client() as http:
        assert http.get(to_callback(http, server)).status_code == 303
    assert mini_provider.requests[4:] == ["GET /authorize", "POST /token"]


@pytest.mark.parametrize("userinfo", ["json", "jwt"])
def test_email_from_userinfo_json_or_signed_jwt(
    mini_syncd: Callable[..., Any], mini_provider: Any, userinfo: str
) -> None:
    mini_provider.forge.email_in_id_token = False
    mini_provider.forge.userinfo = userinfo
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        assert http.get(to_callback(http, server)).status_code == 303
        assert http.get(server.url + "/api/report").status_code == 200
    expected = "userinfo_jwt" if userinfo == "jwt" else "userinfo"
    assert [e["email_from"] for e in logs if e["event"] == "login"] == [expected]


def test_tampered_state_is_400(mini_syncd: Callable[..., Any]) -> None:
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        callback = to_callback(http, server)
        response = http.get(with_param(callback, "state", "forged-state"))
        assert response.status_code == 400
        assert "La connexion n'a pas pu être vérifiée" in html.unescape(response.text)
        assert http.get(server.url + "/api/report").status_code == 401
    assert_one_line_refusal(logs, "state")


def test_replayed_callback_is_400(mini_syncd: Callable[..., Any]) -> None:
    server = mini_syncd()
    with client() as http:
        callback = to_callback(http, server)
        assert http.get(callback).status_code == 303
        http.post(server.url + "/logout")
        with capture_logs() as logs:
            assert http.get(callback).status_code == 400
    assert_one_line_refusal(logs, "state")


def test_callback_naming_another_issuer_is_400(mini_syncd: Callable[..., Any]) -> None:
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        callback = to_callback(http, server)
        assert http.get(with_param(callback, "iss", "https://evil.example")).status_code == 400
    assert_one_line_refusal(logs, "issuer")


@pytest.mark.parametrize(
    ("forge", "needle"),
    [
        ({"key": "other"}, "signature"),
        ({"key": "unknown_kid"}, "key the provider does not publish"),
        ({"claims": {"aud": "another-client"}}, "'aud'"),
        ({"claims": {"aud": ["another-client", "a-third"]}}, "'aud'"),
        ({"claims": {"iss": "https://evil.example"}}, "'iss'"),
        ({"claims": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}}, "expired"),
        ({"claims": {"nonce": "not-the-nonce-we-sent"}}, "'nonce'"),
        ({"omit": ("nonce",)}, "'nonce'"),
        ({"omit": ("exp",)}, "'exp'"),
        ({"omit": ("aud",)}, "'aud'"),
    ],
    ids=[
        "another-key",
        "unknown-kid",
        "wrong-audience",
        "wrong-audiences",
        "wrong-issuer",
        "expired",
        "wrong-nonce",
        "no-nonce",
        "no-exp",
        "no-aud",
    ],
)
def test_bad_id_token_is_401(
    mini_syncd: Callable[..., Any], mini_provider: Any, forge: dict[str, Any], needle: str
) -> None:
    for name, value in forge.items():
        setattr(mini_provider.forge, name, value)
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        response = http.get(to_callback(http, server))
        assert response.status_code == 401, response.text
        assert http.get(server.url + "/api/report").status_code == 401
        assert http.get(server.url + "/").headers["location"] == "/login"
    entry = assert_one_line_refusal(logs, "ID token refused", needle)
    assert entry["status"] == 401


def test_email_not_allowed_is_403_naming_it(
    mini_syncd: Callable[..., Any], mini_provider: Any
) -> None:
    mini_provider.email = "intrus@example.org"
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        response = http.get(to_callback(http, server))
        assert response.status_code == 403
        assert "L'adresse intrus@example.org n'est pas autorisée" in html.unescape(response.text)
        assert http.get(server.url + "/api/report").status_code == 401
    assert_one_line_refusal(logs, "intrus@example.org", "not allowed")


def test_allowed_domain_lets_its_addresses_in(
    mini_syncd: Callable[..., Any], mini_provider: Any
) -> None:
    mini_provider.email = "Dominique.Petit@Seine-et-Marne.fr"
    server = mini_syncd(allowed_emails=(), allowed_domains=("seine-et-marne.fr",))
    with client() as http:
        assert http.get(to_callback(http, server)).status_code == 303
        assert "Dominique.Petit@Seine-et-Marne.fr" in http.get(server.url + "/").text
    mini_provider.email = "camille@seine-et-marne.fr.evil.example"
    with client() as http:
        assert http.get(to_callback(http, server)).status_code == 403


@pytest.mark.parametrize(
    ("forge", "status", "needle"),
    [
        ({"userinfo": "jwt_other_key"}, 401, "userinfo JWT refused"),
        ({"userinfo_claims": {"sub": "someone-else"}}, 401, "another subject"),
        ({"userinfo_claims": {"email_verified": False}}, 403, "not verified"),
    ],
    ids=["userinfo-jwt-another-key", "userinfo-other-subject", "email-not-verified"],
)
def test_bad_userinfo_is_refused(
    mini_syncd: Callable[..., Any],
    mini_provider: Any,
    forge: dict[str, Any],
    status: int,
    needle: str,
) -> None:
    mini_provider.forge.email_in_id_token = False
    for name, value in forge.items():
        setattr(mini_provider.forge, name, value)
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        assert http.get(to_callback(http, server)).status_code == status
        assert http.get(server.url + "/api/report").status_code == 401
    assert_one_line_refusal(logs, needle)


# -- session cookies ------------------------------------------------------------------------


def session_cookie(secret: str, payload: dict[str, Any]) -> str:
    """A cookie as Starlette's SessionMiddleware writes it, signed with `secret`."""
    data = base64.b64encode(json.dumps(payload).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


def test_a_cookie_signed_with_the_shared_secret_works_on_any_replica(
    mini_syncd: Callable[..., Any],
) -> None:
    """Two replicas with the same SYNCD_SESSION_SECRET: a login on one reads the other."""
    first, second = mini_syncd(), mini_syncd()
    with client() as http:
        assert http.get(to_callback(http, first)).status_code == 303
        cookie = http.cookies["syncd_session"]
    with client() as other:
        other.cookies.set("syncd_session", cookie)
        assert other.get(second.url + "/api/report").status_code == 200


def test_a_hand_signed_cookie_with_the_right_secret_is_accepted(
    mini_syncd: Callable[..., Any],
) -> None:
    """The forgeries below differ from this one by their signature only."""
    server = mini_syncd()
    secret = server.settings.secrets.session_secret.get_secret_value()
    email = server.settings.auth.allowed_emails[0]
    cookie = session_cookie(secret, {"email": email, "expires_at": time.time() + 600})
    with client() as http:
        http.cookies.set("syncd_session", cookie)
        assert http.get(server.url + "/api/report").status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [
        "forged",
        base64.b64encode(b'{"email": "camille.martin@beta.gouv.fr"}').decode(),
        session_cookie(
            "another-secret-0123456789",
            {"email": "camille.martin@beta.gouv.fr", "expires_at": time.time() + 3600},
        ),
    ],
    ids=["garbage", "unsigned", "another-secret"],
)
def test_forged_cookie_is_refused(mini_syncd: Callable[..., Any], cookie: str) -> None:
    server = mini_syncd()
    with client() as http, capture_logs() as logs:
        http.cookies.set("syncd_session", cookie)
        assert http.get(server.url + "/api/report").status_code == 401
    assert_one_line_refusal(logs, "bad signature or expired")
    with client() as http:
        http.cookies.set("syncd_session", cookie)
        assert http.get(server.url + "/").headers["location"] == "/login"


def test_expired_session_is_refused(mini_syncd: Callable[..., Any]) -> None:
    server = mini_syncd()
    secret = server.settings.secrets.session_secret.get_secret_value()
    email = server.settings.auth.allowed_emails[0]
    with client() as http, capture_logs() as logs:
        http.cookies.set("syncd_session", session_cookie(secret, {"email": email, "expires_at": 1}))
        assert http.get(server.url + "/api/report").status_code == 401
    assert [e["event"] for e in logs if e["event"] == "session expired"] == ["session expired"]


def test_session_of_an_email_no_longer_allowed_is_refused(mini_syncd: Callable[..., Any]) -> None:
    server = mini_syncd()
    secret = server.settings.secrets.session_secret.get_secret_value()
    payload = {"email": "former@beta.gouv.fr", "expires_at": time.time() + 600}
    with client() as http:
        http.cookies.set("syncd_session", session_cookie(secret, payload))
        response = http.get(server.url + "/api/report")
        assert response.status_code == 401
        assert "no longer allowed" in response.json()["detail"]


# -- a provider that does not answer, or answers nonsense --------------------------------------


def test_unreachable_provider_is_one_line_at_start_and_503_on_login(
    mini_syncd: Callable[..., Any],
) -> None:
    with capture_logs() as logs:
        server = mini_syncd(oidc_issuer="http://127.0.0.1:9")
    (entry,) = [e for e in logs if e["log_level"] == "error"]
    assert "OpenID provider unavailable" in entry["event"]
    assert "http://127.0.0.1:9/.well-known/openid-configuration" in entry["error"]
    with client() as http:
        response = http.get(server.url + "/login")
        assert response.status_code == 503
        assert "Le service de connexion ne répond pas" in response.text
        assert http.get(server.url + "/").headers["location"] == "/login"
        assert http.get(server.url + "/api/report").status_code == 401
        assert http.get(server.url + "/healthz").status_code == 200
        assert http.get(server.url + "/metrics").status_code == 200


def test_bad_discovery_is_503_until_it_is_fixed(
    mini_syncd: Callable[..., Any], mini_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oidc, "RETRY_SECONDS", 0.0)  # read again at each /login
    mini_provider.discovery_issuer = "https://someone-else.example"
    with capture_logs() as logs:
        server = mini_syncd()
    (entry,) = [e for e in logs if e["log_level"] == "error"]
    assert "names issuer 'https://someone-else.example'" in entry["error"]
    with client() as http, capture_logs() as logs:
        assert http.get(server.url + "/login").status_code == 503
        mini_provider.discovery_issuer = None
        assert http.get(server.url + "/login").status_code == 302
    (entry,) = [e for e in logs if e["event"] == "login unavailable"]
    assert "someone-else" in entry["error"]
