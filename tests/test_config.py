"""Config loading: TOML + SYNCD_<SECTION>_<KEY> + secrets from the environment, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.cli import main
from syncd.config import ConfigError, FigmaConfig, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


BOARDS = '[[trello.boards]]\nid = "oSmy09cz"\nrole = "consortium"\n'


def test_example_config_loads_with_contract_defaults() -> None:
    settings = load_settings(EXAMPLE, {})
    assert settings.store.url == "sqlite:///syncd.db"
    assert settings.trello.max_requests_per_10s == 90
    assert [b.id for b in settings.trello.boards] == ["oSmy09cz", "BiT8tx09"]
    assert settings.consortium_board is not None and settings.consortium_board.id == "oSmy09cz"
    assert settings.governance.max_priority_actions == 3
    assert settings.server.public_url == "http://127.0.0.1:8787"


def test_environment_overrides_scalars_and_lists() -> None:
    settings = load_settings(
        EXAMPLE,
        {
            "SYNCD_STORE_URL": "postgresql+psycopg://u@h/db",
            "SYNCD_TRELLO_API_BASE": "http://127.0.0.1:9/1",
            "SYNCD_TRELLO_MAX_REQUESTS_PER_10S": "50",
            "SYNCD_GOVERNANCE_DEPARTMENTS": "77, 2a, 5",
        },
    )
    assert settings.store.url == "postgresql+psycopg://u@h/db"
    assert settings.trello.api_base == "http://127.0.0.1:9/1"
    assert settings.trello.max_requests_per_10s == 50
    assert settings.governance.departments == ("77", "2A", "05")


def test_figma_tree_read_interval_defaults_to_an_hour_and_can_be_overridden() -> None:
    assert FigmaConfig().tree_read_interval_minutes == 60
    env = {"SYNCD_FIGMA_TREE_READ_INTERVAL_MINUTES": "14400"}
    assert load_settings(EXAMPLE, env).figma.tree_read_interval_minutes == 14400


def test_secrets_come_from_the_environment_and_never_print() -> None:
    settings = load_settings(EXAMPLE, {"TRELLO_TOKEN": "s3cr3t-token", "SYNCD_ADMIN_TOKEN": "adm"})
    assert settings.secrets.trello_token is not None
    assert settings.secrets.trello_token.get_secret_value() == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(settings) and "s3cr3t-token" not in str(settings)
    assert settings.secrets.admin_token is not None


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("[store]\nurl = 'sqlite:///a.db'\nfoo = 1\n" + BOARDS, {}, "store.foo: unknown key"),
        ("[trello]\ntoken = 'x'\n" + BOARDS, {}, "trello.token: unknown key"),
        ("[secrets]\ntrello_token = 'x'\n" + BOARDS, {}, "secrets: come from the environment"),
        ("[store]\nurl = 'sqlite:///a.db'\n", {}, "trello: missing"),
        ("[trello]\nboards = []\n", {}, "trello.boards: at least one"),
        ("[schedule]\npoll_seconds = 'often'\n" + BOARDS, {}, "schedule.poll_seconds:"),
        ("[store]\nurl = 'mysql://x'\n" + BOARDS, {}, "store.url: must start with"),
        ('[[trello.boards]]\nid = "nope"\nrole = "consortium"\n', {}, "trello.boards.0.id:"),
        ('[[trello.boards]]\nid = "oSmy09cz"\nrole = "boss"\n', {}, "trello.boards.0.role:"),
        ("[governance]\ndepartments = ['99']\n" + BOARDS, {}, "governance.departments:"),
        (
            "[governance]\ndepartments = ['77', '20']\n" + BOARDS,
            {},
            "governance.departments: '20' is not a département INSEE code",
        ),
        ("[governance]\nmax_priority = 3\n" + BOARDS, {}, "governance.max_priority: unknown key"),
        (
            BOARDS,
            {"SYNCD_GOVERNANCE_STALE_AFTER_DAYS": "0"},
            "governance.stale_after_days (from SYNCD_GOVERNANCE_STALE_AFTER_DAYS):",
        ),
        (BOARDS, {"SYNCD_SECRETS_TRELLO_TOKEN": "x"}, "SYNCD_SECRETS_TRELLO_TOKEN: unknown"),
        (
            "[figma]\ntree_read_interval_minutes = 0\n" + BOARDS,
            {},
            "figma.tree_read_interval_minutes: Input should be greater than or equal to 1",
        ),
        ("x = = 1\n", {}, "not valid TOML"),
        (
            BOARDS,
            {"SYNCD_TRELLO_MAX_REQUESTS_PER_10S": "500"},
            "trello.max_requests_per_10s (from SYNCD_TRELLO_MAX_REQUESTS_PER_10S):",
        ),
        (BOARDS, {"SYNCD_TRELLO_COLOUR": "red"}, "SYNCD_TRELLO_COLOUR: unknown setting"),
        (BOARDS, {"SYNCD_NOPE_X": "1"}, "SYNCD_NOPE_X: unknown setting"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, environ: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml", {})


def test_cli_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[store]\nurl = 'sqlite:///a.db'\nfoo = 1\n" + BOARDS)
    code = main(["--config", str(path), "report", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines == [f"syncd: config error: {path}: store.foo: unknown key"]


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--format", "pdf"]) == 2
    assert main(["no-such-command"]) == 2


# -- [auth] (issue 11) ---------------------------------------------------------------------

LOGIN_ENV = {
    "SYNCD_AUTH_OIDC_ISSUER": "https://auth.example.gouv.fr/api/v2/",
    "SYNCD_AUTH_OIDC_CLIENT_ID": "syncd",
    "SYNCD_SESSION_SECRET": "a-session-secret-of-32-characters",
    "SYNCD_OIDC_CLIENT_SECRET": "oidc-client-secret",
}


def test_auth_defaults_mean_no_login() -> None:
    auth = load_settings(EXAMPLE, {}).auth
    assert auth.oidc_issuer == "" and not auth.login_configured
    assert auth.oidc_scopes == ("openid", "email")
    assert auth.allowed_emails == () and auth.allowed_domains == ()
    assert auth.session_hours == 12


def test_auth_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BOARDS + "[auth]\noidc_client_id = 'syncd'\n"
        "oidc_scopes = ['openid', 'email', 'given_name', 'usual_name']\n"
        "allowed_emails = [' Camille.Martin@Beta.gouv.fr ']\nsession_hours = 8\n",
    )
    environ = {
        "SYNCD_AUTH_OIDC_ISSUER": "https://auth.example.gouv.fr/api/v2/",
        "SYNCD_AUTH_ALLOWED_DOMAINS": "beta.gouv.fr, @Example.ORG",
        "SYNCD_SESSION_SECRET": "a-session-secret-of-32-characters",
        "SYNCD_OIDC_CLIENT_SECRET": "oidc-client-secret",
    }
    settings = load_settings(path, environ)
    auth = settings.auth
    assert auth.login_configured and auth.oidc_issuer == "https://auth.example.gouv.fr/api/v2"
    assert auth.oidc_scopes == ("openid", "email", "given_name", "usual_name")
    assert auth.allowed_emails == ("camille.martin@beta.gouv.fr",)
    assert auth.allowed_domains == ("beta.gouv.fr", "example.org")
    assert auth.session_hours == 8
    secrets = settings.secrets
    assert secrets.session_secret is not None and secrets.oidc_client_secret is not None
    for secret in ("a-session-secret-of-32-characters", "oidc-client-secret"):
        assert secret not in repr(settings) and secret not in str(settings)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {k: v for k, v in LOGIN_ENV.items() if k != "SYNCD_SESSION_SECRET"},
            "SYNCD_SESSION_SECRET: required when auth.oidc_issuer is set",
        ),
        (
            {**LOGIN_ENV, "SYNCD_SESSION_SECRET": "short"},
            "SYNCD_SESSION_SECRET: required when auth.oidc_issuer is set (at least 16",
        ),
        (
            {k: v for k, v in LOGIN_ENV.items() if k != "SYNCD_AUTH_OIDC_CLIENT_ID"},
            "auth.oidc_client_id: required when auth.oidc_issuer is set",
        ),
        ({**LOGIN_ENV, "SYNCD_AUTH_OIDC_ISSUER": "auth.example"}, "auth.oidc_issuer"),
        (
            {"SYNCD_AUTH_OIDC_SCOPES": "email"},
            "auth.oidc_scopes (from SYNCD_AUTH_OIDC_SCOPES): must",
        ),
        ({"SYNCD_AUTH_ALLOWED_EMAILS": "camille"}, "auth.allowed_emails"),
        ({"SYNCD_AUTH_ALLOWED_DOMAINS": "beta"}, "auth.allowed_domains"),
        ({"SYNCD_AUTH_SESSION_HOURS": "0"}, "auth.session_hours"),
        ({"SYNCD_AUTH_PASSWORD": "x"}, "SYNCD_AUTH_PASSWORD: unknown setting auth.password"),
    ],
)
def test_bad_auth_is_one_line_naming_the_key(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, environ)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    for secret in ("a-session-secret-of-32-characters", "oidc-client-secret"):
        assert secret not in message


def test_login_secrets_are_not_config_overrides_and_scopes_split_on_spaces() -> None:
    settings = load_settings(EXAMPLE, {**LOGIN_ENV, "SYNCD_AUTH_OIDC_SCOPES": "openid email"})
    assert settings.auth.login_configured
    assert settings.auth.oidc_scopes == ("openid", "email")


def test_the_demo_config_reads_as_the_demo_settings(tmp_path: Path) -> None:
    """`demo_config` (the TOML the subprocess tests and benches write) says what
    `demo_settings` builds in process: the same boards, Figma file, bases and départements."""
    from types import SimpleNamespace

    from syncd.demo import KNOWN_DEPARTMENTS, demo_config, demo_settings

    sandbox = SimpleNamespace(
        trello_api_base="http://127.0.0.1:1/1",
        figma_api_base="http://127.0.0.1:1/figma/v1",
        api_key="k",
        token="t",
        api_secret="s",
    )
    path = tmp_path / "syncd.toml"
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    path.write_text(demo_config(sandbox, store_url=url, departments=KNOWN_DEPARTMENTS))  # type: ignore[arg-type]
    read = load_settings(path, environ={})
    built = demo_settings(sandbox, tmp_path / "demo.db")  # type: ignore[arg-type]
    assert read.store.url == built.store.url
    assert read.trello.api_base == built.trello.api_base
    assert read.trello.boards == built.trello.boards
    assert (read.figma.api_base, read.figma.files) == (built.figma.api_base, built.figma.files)
    assert read.governance.departments == built.governance.departments
    bare = load_settings(_written(tmp_path, demo_config(sandbox, figma=False)), environ={})  # type: ignore[arg-type]
    assert bare.figma.files == () and len(bare.trello.boards) == 2


def _written(folder: Path, text: str) -> Path:
    path = folder / "bare.toml"
    path.write_text(text)
    return path
