"""The whole login against the certified `oidc-provider` (Node, run on 127.0.0.1): once with an
HTTP client that keeps cookies, hop by hop, and once in headless Chromium. Login, dashboard
visible with who is logged in, logout (ours and the provider's)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

OIDC_DIR = Path(__file__).parent / "oidc"


class Forms(HTMLParser):
    """Every form of a page: its action, method, inputs and submit buttons."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.buttons: list[dict[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            form = {"action": values.get("action", ""), "method": values.get("method", "get")}
            form["fields"] = {}
            self.forms.append(form)
            if values.get("id"):
                self.by_id[values["id"]] = form
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][values.get("name", "")] = values.get("value", "")
        elif tag == "button":
            self.buttons.append(values)


def follow(client: httpx.Client, response: httpx.Response, until: str) -> httpx.Response:
    """Follow redirects (GET) until the next one would leave for a URL starting with `until`."""
    for _ in range(12):
        if not response.is_redirect:
            return response
        target = urljoin(str(response.url), response.headers["location"])
        if target.startswith(until):
            return response
        response = client.get(target)
    raise AssertionError("too many redirects")


def login(client: httpx.Client, server: Any, provider: Any, email: str) -> httpx.Response:
    """From the dashboard to the dashboard through the provider's login form."""
    response = client.get(server.url + "/")
    assert response.status_code == 302 and response.headers["location"] == "/login"
    response = client.get(server.url + "/login")
    assert response.status_code == 302
    authorize = urlsplit(response.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == provider.issuer
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert query["state"] and query["nonce"]
    assert query["redirect_uri"] == server.callback
    assert query["scope"] == "openid email"
    page = follow(client, client.get(response.headers["location"]), server.url)
    form = Forms(page.text).forms[0]
    assert "email" in form["fields"]
    response = client.post(urljoin(str(page.url), form["action"]), data={"email": email})
    callback = follow(client, response, server.url)
    location = urljoin(str(callback.url), callback.headers["location"])
    assert location.startswith(server.callback + "?")
    return client.get(location)


def test_login_dashboard_logout_with_an_http_client(
    node_syncd: Callable[..., tuple[Any, Any]],
) -> None:
    server, provider = node_syncd()
    email = server.settings.auth.allowed_emails[0]
    with httpx.Client(follow_redirects=False, timeout=20) as client, capture_logs() as logs:
        response = login(client, server, provider, email)
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert [e["email_from"] for e in logs if e["event"] == "login"] == ["userinfo"]
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("syncd_session=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/", "max-age=43200"} <= flags
        assert "secure" not in flags  # public_url is http://127.0.0.1 here

        dashboard = client.get(server.url + "/")
        assert dashboard.status_code == 200
        assert "Rapport de dérive" in dashboard.text
        assert f"Connecté en tant que <strong>{email}</strong>" in dashboard.text
        logout_form = Forms(dashboard.text).forms[0]
        assert logout_form == {"action": "/logout", "method": "post", "fields": {}}
        assert client.get(server.url + "/api/report").status_code == 200

        response = client.post(server.url + "/logout")
        assert response.status_code == 303
        end_session = urlsplit(response.headers["location"])
        assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == (
            provider.issuer + "/session/end"
        )
        query = {k: v[0] for k, v in parse_qs(end_session.query).items()}
        assert query["post_logout_redirect_uri"] == server.url + "/logged-out"
        assert query["id_token_hint"].count(".") == 2
        assert "syncd_session=null" in response.headers["set-cookie"]
        assert client.get(server.url + "/api/report").status_code == 401
        assert client.get(server.url + "/").headers["location"] == "/login"

        # the provider's own logout, then back to syncd's signed-out page
        confirm = client.get(response.headers["location"])
        assert confirm.status_code == 200
        form = Forms(confirm.text).by_id["op.logoutForm"]
        done = client.post(
            urljoin(str(confirm.url), form["action"]), data=form["fields"] | {"logout": "yes"}
        )
        done = follow(client, done, server.url)
        back = urljoin(str(done.url), done.headers["location"])
        assert back.startswith(server.url + "/logged-out")
        page = client.get(back)
        assert page.status_code == 200 and "Vous êtes déconnecté" in page.text

        # the provider session is gone too: /login asks for the e-mail again
        again = follow(client, client.get(server.url + "/login"), server.url)
        assert again.status_code == 200 and "email" in Forms(again.text).forms[0]["fields"]


def test_userinfo_answered_as_a_signed_jwt(node_syncd: Callable[..., tuple[Any, Any]]) -> None:
    """ProConnect answers userinfo as ``application/jwt``: the e-mail is read from it."""
    server, provider = node_syncd(userinfo_signed_response_alg="RS256")
    email = server.settings.auth.allowed_emails[0]
    with httpx.Client(follow_redirects=False, timeout=20) as client, capture_logs() as logs:
        response = login(client, server, provider, email)
        assert response.status_code == 303, response.text
        assert email in client.get(server.url + "/").text
    assert [e["email_from"] for e in logs if e["event"] == "login"] == ["userinfo_jwt"]


def test_email_in_the_id_token(node_syncd: Callable[..., tuple[Any, Any]]) -> None:
    server, provider = node_syncd(email_in_id_token=True)
    email = server.settings.auth.allowed_emails[0]
    with httpx.Client(follow_redirects=False, timeout=20) as client, capture_logs() as logs:
        assert login(client, server, provider, email).status_code == 303
        assert email in client.get(server.url + "/").text
    assert [e["email_from"] for e in logs if e["event"] == "login"] == ["id_token"]


def test_email_not_allowed_is_403_naming_it(node_syncd: Callable[..., tuple[Any, Any]]) -> None:
    server, provider = node_syncd()
    with httpx.Client(follow_redirects=False, timeout=20) as client:
        response = login(client, server, provider, "intrus@example.org")
        assert response.status_code == 403
        assert "intrus@example.org" in response.text
        assert "syncd_session" not in response.headers.get("set-cookie", "") or (
            "syncd_session=null" in response.headers["set-cookie"]
        )
        assert client.get(server.url + "/api/report").status_code == 401


@pytest.mark.slow
@pytest.mark.chromium
def test_login_dashboard_logout_in_headless_chromium(
    node_syncd: Callable[..., tuple[Any, Any]],
    node: str,
    chromium: str,
    chromium_flags: tuple[str, ...],
    tmp_path: Path,
) -> None:
    server, _provider = node_syncd()
    email = server.settings.auth.allowed_emails[0]
    run = subprocess.run(
        [node, "browser.mjs"],
        cwd=OIDC_DIR,
        input=json.dumps(
            {
                "chromium": chromium,
                "flags": list(chromium_flags),
                "url": server.url,
                "email": email,
                "screenshot": str(tmp_path / "dashboard.png"),
            }
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    steps = json.loads(run.stdout.strip().splitlines()[-1])
    assert steps["redirected_to_provider"] is True
    assert steps["dashboard_url"] == server.url + "/"
    assert f"Connecté en tant que {email}" in steps["dashboard_session"]
    assert steps["dashboard_title"].startswith("Rapport de dérive")
    assert steps["csp_violations"] == []
    assert steps["after_logout_url"].startswith(server.url + "/logged-out")
    assert "Vous êtes déconnecté" in steps["after_logout_text"]
    assert steps["dashboard_after_logout_url"].startswith(_provider.issuer + "/interaction/")
    assert (tmp_path / "dashboard.png").stat().st_size > 1000
