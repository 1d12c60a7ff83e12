"""Who may read what (the contract's access rules): the pure decision, then each access mode on a
served app, the security headers, and what `syncd check` says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from syncd.config import AuthConfig
from syncd.web.access import (
    ADMIN_READER,
    CLOSED_MESSAGE,
    Allowlist,
    Bearer,
    Mode,
    Outcome,
    access_mode,
    decide,
    is_loopback,
)
from syncd.web.auth import access_checks

ADMIN = "admin-token-for-scripts"
ALLOW = Allowlist.of(["camille.martin@beta.gouv.fr"], ["seine-et-marne.fr"])

# -- the pure rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("syncd.example.gouv.fr", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_access_mode() -> None:
    assert access_mode(login=True, token=True, host="0.0.0.0") is Mode.LOGIN
    assert access_mode(login=False, token=True, host="0.0.0.0") is Mode.TOKEN
    assert access_mode(login=False, token=False, host="127.0.0.1") is Mode.LOOPBACK
    assert access_mode(login=False, token=False, host="0.0.0.0") is Mode.CLOSED


@pytest.mark.parametrize(
    ("email", "allowed"),
    [
        ("camille.martin@beta.gouv.fr", True),
        ("Camille.Martin@BETA.gouv.fr", True),
        ("dominique@seine-et-marne.fr", True),
        ("someone@beta.gouv.fr", False),
        ("dominique@evil.seine-et-marne.fr", False),
        ("dominique@seine-et-marne.fr.evil.example", False),
        ("camille.martin@beta.gouv.fr@evil.example", False),
        ("@seine-et-marne.fr", False),
        ("", False),
        (None, False),
    ],
)
def test_allowlist(email: str | None, allowed: bool) -> None:
    assert ALLOW.allows(email) is allowed


@pytest.mark.parametrize(
    ("mode", "page", "bearer", "session", "outcome"),
    [
        # a valid admin bearer reads in every mode that has one; a wrong one is 401
        (Mode.LOGIN, True, Bearer.VALID, None, Outcome.ALLOW),
        (Mode.TOKEN, False, Bearer.VALID, None, Outcome.ALLOW),
        (Mode.LOGIN, False, Bearer.INVALID, "camille.martin@beta.gouv.fr", Outcome.UNAUTHORIZED),
        (Mode.TOKEN, True, Bearer.INVALID, None, Outcome.UNAUTHORIZED),
        # login: a page redirects, the API is 401; an allowed session reads
        (Mode.LOGIN, True, Bearer.ABSENT, None, Outcome.LOGIN),
        (Mode.LOGIN, False, Bearer.ABSENT, None, Outcome.UNAUTHORIZED),
        (Mode.LOGIN, True, Bearer.ABSENT, "camille.martin@beta.gouv.fr", Outcome.ALLOW),
        (Mode.LOGIN, False, Bearer.ABSENT, "dominique@seine-et-marne.fr", Outcome.ALLOW),
        (Mode.LOGIN, True, Bearer.ABSENT, "former@beta.gouv.fr", Outcome.LOGIN),
        (Mode.LOGIN, False, Bearer.ABSENT, "former@beta.gouv.fr", Outcome.UNAUTHORIZED),
        # token only: 401 for pages too (a browser cannot send the header)
        (Mode.TOKEN, True, Bearer.ABSENT, None, Outcome.UNAUTHORIZED),
        # neither: open on loopback, 403 elsewhere
        (Mode.LOOPBACK, True, Bearer.ABSENT, None, Outcome.ALLOW),
        (Mode.LOOPBACK, False, Bearer.ABSENT, None, Outcome.ALLOW),
        (Mode.CLOSED, True, Bearer.ABSENT, None, Outcome.FORBIDDEN),
        (Mode.CLOSED, False, Bearer.ABSENT, None, Outcome.FORBIDDEN),
    ],
)
def test_decide(
    mode: Mode, page: bool, bearer: Bearer, session: str | None, outcome: Outcome
) -> None:
    decision = decide(mode, page=page, bearer=bearer, session_email=session, allowlist=ALLOW)
    assert decision.outcome is outcome
    if outcome is Outcome.ALLOW and bearer is Bearer.VALID:
        assert decision.reader == ADMIN_READER
    elif outcome is Outcome.ALLOW and mode is Mode.LOGIN:
        assert decision.reader == session
    if outcome is Outcome.FORBIDDEN:
        assert decision.reason == CLOSED_MESSAGE and "\n" not in CLOSED_MESSAGE


# -- each mode on a served app ----------------------------------------------------------------


def test_loopback_without_login_or_token_serves_the_pages(
    syncd_server: Callable[[], Any],
) -> None:
    server = syncd_server().start(host="127.0.0.1")
    with httpx.Client(timeout=20) as http:
        page = http.get(server.url + "/")
        assert page.status_code == 200 and "Rapport de dérive" in page.text
        assert "Connecté en tant que" not in page.text  # nobody to log out
        assert http.get(server.url + "/api/report").status_code == 200
        assert "set-cookie" not in page.headers
        assert http.get(server.url + "/login").status_code == 404


def test_other_host_without_login_or_token_is_403_but_webhooks_and_health_work(
    syncd_server: Callable[[], Any],
) -> None:
    server = syncd_server().start(host="0.0.0.0")
    with httpx.Client(timeout=20) as http:
        page = http.get(server.url + "/")
        assert page.status_code == 403
        assert page.text == CLOSED_MESSAGE + "\n"
        api = http.get(server.url + "/api/report")
        assert api.status_code == 403 and api.json() == {"detail": CLOSED_MESSAGE}
        for path in ("/healthz", "/metrics"):
            assert http.get(server.url + path).status_code == 200, path
        assert http.get(server.url + "/readyz").status_code in (200, 503)  # not guarded
        assert http.head(server.url + "/webhooks/trello").status_code == 200
        body, headers = server.signed_delivery()
        response = http.post(server.url + "/webhooks/trello", content=body, headers=headers)
        assert response.status_code == 200 and response.json()["status"] == "accepted"
        assert server.intake.trello == ["a" * 24]


def test_admin_token_only(syncd_server: Callable[[], Any]) -> None:
    server = syncd_server().start(host="0.0.0.0", SYNCD_ADMIN_TOKEN=ADMIN)
    with httpx.Client(timeout=20) as http:
        for path in ("/", "/api/report"):
            assert http.get(server.url + path).status_code == 401
            bad = {"Authorization": "Bearer nope"}
            assert http.get(server.url + path, headers=bad).status_code == 401
            good = {"Authorization": f"Bearer {ADMIN}"}
            assert http.get(server.url + path, headers=good).status_code == 200


def test_login_redirects_pages_and_refuses_the_api_but_the_admin_token_still_works(
    mini_syncd: Callable[..., Any],
) -> None:
    server = mini_syncd(secrets={"SYNCD_ADMIN_TOKEN": ADMIN})
    with httpx.Client(timeout=20, follow_redirects=False) as http:
        page = http.get(server.url + "/")
        assert page.status_code == 302 and page.headers["location"] == "/login"
        api = http.get(server.url + "/api/report")
        assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {ADMIN}"}
        assert http.get(server.url + "/api/report", headers=good).status_code == 200
        dashboard = http.get(server.url + "/", headers=good)
        assert dashboard.status_code == 200 and "Se déconnecter" not in dashboard.text
        assert http.get(server.url + "/metrics").status_code == 200
        # logging out without a session is harmless
        out = http.post(server.url + "/logout")
        assert out.status_code == 303 and out.headers["location"] == "/logged-out"
        assert "Vous êtes déconnecté" in http.get(server.url + "/logged-out").text


def test_security_headers(syncd_server: Callable[[], Any]) -> None:
    server = syncd_server().start(host="127.0.0.1")
    with httpx.Client(timeout=20) as http:
        page = http.get(server.url + "/")
        csp = page.headers["content-security-policy"]
        for directive in (
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "style-src 'unsafe-inline'",
        ):
            assert directive in csp
        assert "script-src" not in csp  # default-src 'none' covers scripts
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in page.headers  # http public_url
        api = http.get(server.url + "/api/report")
        assert (
            api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        )
        assert api.headers["x-content-type-options"] == "nosniff"


def test_https_public_url_makes_the_cookie_secure_and_adds_hsts(
    mini_syncd: Callable[..., Any],
) -> None:
    server = mini_syncd(public_url="https://syncd.example.gouv.fr")
    with httpx.Client(timeout=20, follow_redirects=False) as http:
        response = http.get(server.url + "/login")
        assert response.status_code == 302
        assert (
            "redirect_uri=https%3A%2F%2Fsyncd.example.gouv.fr%2Fauth%2Fcallback"
            in (response.headers["location"])
        )
        flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
        assert {"secure", "httponly", "samesite=lax"} <= flags
        assert response.headers["strict-transport-security"] == "max-age=31536000"


# -- syncd check --------------------------------------------------------------------------------


def check_lines(syncd: Any, **changes: Any) -> list[tuple[bool, str]]:
    settings = syncd.settings.model_copy(update=changes)
    return list(access_checks(settings))


def test_check_says_which_mode_is_active(
    syncd_server: Callable[[], Any], mini_syncd: Callable[..., Any], mini_provider: Any
) -> None:
    plain = syncd_server().start(host="127.0.0.1")
    assert check_lines(plain) == [
        (True, "access: open on loopback host 127.0.0.1 (no login, no admin token configured)")
    ]
    server = plain.settings.server.model_copy(update={"host": "0.0.0.0"})
    ((ok, line),) = check_lines(plain, server=server)
    assert ok and line.startswith("access: closed: server.host 0.0.0.0 is not loopback")

    login = mini_syncd()
    lines = check_lines(login)
    assert lines[0] == (
        True,
        "access: OpenID Connect login (1 allowed e-mail(s), 0 allowed domain(s))",
    )
    assert lines[1] == (
        True,
        f"oidc provider {mini_provider.issuer}: discovery ok, offers end_session; "
        f"redirect URI to register: {login.callback}",
    )
    nobody = login.settings.auth.model_copy(update={"allowed_emails": ()})
    assert (
        False,
        "auth: neither allowed_emails nor allowed_domains is set: nobody can log in",
    ) in (check_lines(login, auth=nobody))
    gone = AuthConfig(
        oidc_issuer="http://127.0.0.1:9", oidc_client_id="x", allowed_domains=("beta.gouv.fr",)
    )
    ok, line = check_lines(login, auth=gone)[-1]
    assert not ok and line.startswith("oidc provider: cannot reach http://127.0.0.1:9/")
