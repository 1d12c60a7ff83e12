"""The login's marks on the HTML pages: the logged-in reader and the logout form on the served
dashboard (a report file has neither), and the one-message pages (escaped, French default)."""

from __future__ import annotations

import re

from syncd.report import render as r
from syncd.report.strings import LANGS, STRINGS

REPORT = {"generated_at": "2026-11-30T08:00:00Z", "departments": [], "flags": [], "boards": []}
SERVED_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'self' https://auth.example.gouv.fr"
)


def meta_csp(page: str) -> str:
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert match is not None
    return match.group(1).replace("&#39;", "'")


def test_a_report_file_has_no_session_and_posts_nowhere() -> None:
    page = r.render(REPORT, "html")
    assert "<form" not in page and "Se déconnecter" not in page
    assert "form-action 'none'" in meta_csp(page)


def test_the_served_dashboard_shows_the_reader_and_a_logout_form() -> None:
    viewer = r.Viewer(email="camille.martin@beta.gouv.fr", csp=SERVED_CSP)
    page = r.render(REPORT, "html", viewer=viewer)
    assert meta_csp(page) == SERVED_CSP
    form = re.search(
        r'<form class="session" method="post" action="/logout">(.*?)</form>', page, re.S
    )
    assert form is not None
    assert "Connecté en tant que <strong>camille.martin@beta.gouv.fr</strong>" in form.group(1)
    assert '<button type="submit">Se déconnecter</button>' in form.group(1)
    english = r.render(REPORT, "html", lang="en", viewer=viewer)
    assert "Signed in as" in english and "Sign out" in english


def test_the_reader_is_escaped() -> None:
    viewer = r.Viewer(email='"><script>alert(1)</script>@example.org', csp=SERVED_CSP)
    page = r.render(REPORT, "html", viewer=viewer)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@example.org" in page


def test_notice_page() -> None:
    strings = STRINGS["fr"]["session"]
    page = r.render_notice(
        strings["refused_title"],
        strings["not_allowed"].format(email="<b>x</b>@example.org"),
        detail="state does not match",
        link=("/login", strings["login_again"]),
    )
    assert '<html lang="fr">' in page and "<title>Connexion refusée — syncd</title>" in page
    assert "&lt;b&gt;x&lt;/b&gt;@example.org" in page and "<b>x</b>" not in page
    assert "<code>state does not match</code>" in page
    assert '<a href="/login">Se reconnecter</a>' in page
    assert "form-action 'none'" in meta_csp(page) and "<script" not in page
    for lang in LANGS:  # every language has every string of the login pages
        assert set(STRINGS[lang]["session"]) == set(strings)
