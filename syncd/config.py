"""syncd configuration: a TOML file, `SYNCD_<SECTION>_<KEY>` overrides, secrets from the env.

Precedence, highest first: the environment (`SYNCD_STORE_URL`, `SYNCD_TRELLO_API_BASE`, …), the
TOML file (`--config PATH` or `SYNCD_CONFIG`), the defaults below. Secrets (`TRELLO_API_KEY`,
`TRELLO_TOKEN`, `TRELLO_API_SECRET`, `FIGMA_TOKEN`, `FIGMA_WEBHOOK_PASSCODE`,
`SYNCD_ADMIN_TOKEN`, `SYNCD_OIDC_CLIENT_SECRET`, `SYNCD_SESSION_SECRET`, `SYNCD_DIGEST_URLS`)
come only from the environment and are `SecretStr`, so they never print.

Every problem becomes a `ConfigError` whose message is one line naming the key, e.g.
``trello.max_requests_per_10s: Input should be less than or equal to 100``; the CLI turns it into
exit code 2.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from syncd.rules.governance import FlagCode, Rules

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

ENV_PREFIX = "SYNCD_"
# SYNCD_* variables that are not config overrides.
NON_OVERRIDE_ENV = frozenset(
    {
        "SYNCD_CONFIG",
        "SYNCD_ADMIN_TOKEN",
        "SYNCD_DIGEST_URLS",
        "SYNCD_LOG_LEVEL",
        "SYNCD_LOG_FORMAT",
        "SYNCD_OIDC_CLIENT_SECRET",
        "SYNCD_SESSION_SECRET",
        "SYNCD_TEST_PAUSE_AFTER_POST",  # tests only: write-back pauses between POST and commit
        "SYNCD_TEST_HOLD_WEBHOOKS",  # tests only: the webhook worker waits while a file exists
    }
)
MIN_SESSION_SECRET = 16
_BOARD_ID = re.compile(r"^(?:[0-9a-fA-F]{24}|[A-Za-z0-9]{8})$")


class ConfigError(Exception):
    """A bad config file or value; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Section):
    url: str = "sqlite:///syncd.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value


class BoardConfig(_Section):
    id: str
    role: Literal["consortium", "product"]

    @field_validator("id")
    @classmethod
    def _board_id(cls, value: str) -> str:
        if not _BOARD_ID.match(value):
            raise ValueError(
                f"{value!r} is neither a 24-hex board id nor an 8-character short link"
            )
        return value


class TrelloConfig(_Section):
    api_base: str = "https://api.trello.com/1"
    max_requests_per_10s: int = Field(default=90, ge=1, le=100)
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    boards: tuple[BoardConfig, ...] = ()

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("boards")
    @classmethod
    def _boards(cls, boards: tuple[BoardConfig, ...]) -> tuple[BoardConfig, ...]:
        if not boards:
            raise ValueError("at least one [[trello.boards]] entry is required")
        if sum(1 for board in boards if board.role == "consortium") > 1:
            raise ValueError('only one board may have role = "consortium"')
        ids = [board.id for board in boards]
        if len(set(ids)) != len(ids):
            raise ValueError("a board is listed twice")
        return boards


class FigmaConfig(_Section):
    api_base: str = "https://api.figma.com"
    files: tuple[str, ...] = ()
    max_requests_per_minute: int = Field(default=10, ge=1, le=1000)
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    # The least time between two Tier-1 reads (tree, linked nodes) of one file: 1 min to 31 days.
    tree_read_interval_minutes: int = Field(default=60, ge=1, le=44_640)

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("files")
    @classmethod
    def _file_keys(cls, files: tuple[str, ...]) -> tuple[str, ...]:
        for key in files:
            if not re.fullmatch(r"[A-Za-z0-9]{10,64}", key):
                raise ValueError(f"{key!r} is not a Figma file key")
        return files


class ScheduleConfig(_Section):
    poll_seconds: int = Field(default=300, ge=5)
    full_sync_hours: float = Field(default=24, gt=0)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8787"

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


# -- [auth]: who may read the dashboard and the report API (issue 11) ---------------------


class AuthConfig(_Section):
    """The OpenID Connect login; `oidc_issuer = ""` means no login (see `syncd.web.access`)."""

    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_scopes: tuple[str, ...] = ("openid", "email")
    allowed_emails: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    session_hours: float = Field(default=12, gt=0, le=24 * 31)

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _http_url(value) if value.strip() else ""

    @field_validator("oidc_scopes", mode="before")
    @classmethod
    def _scope_words(cls, value: Any) -> Any:
        """OAuth scopes are space-separated: "openid email" is two scopes."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(word for item in value for word in str(item).split())
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in scopes:
            raise ValueError('must include "openid"')
        return scopes

    @field_validator("allowed_emails")
    @classmethod
    def _emails(cls, emails: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(email.strip().lower() for email in emails)
        for email in cleaned:
            local, at, domain = email.partition("@")
            if not (local and at and domain) or "@" in domain:
                raise ValueError(f"{email!r} is not an e-mail address")
        return cleaned

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(domain.strip().lower().removeprefix("@") for domain in domains)
        for domain in cleaned:
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
                raise ValueError(f"{domain!r} is not an e-mail domain")
        return cleaned

    @property
    def login_configured(self) -> bool:
        return bool(self.oidc_issuer)


# -- [writeback]: comments on the flagged départements' dashboard cards (issue 13) ------


WRITEBACK_FLAGS = tuple(code.value for code in FlagCode if code != FlagCode.NO_DASHBOARD)


class WritebackConfig(_Section):
    """`[writeback]`: comment on the dashboard card of a flagged département (opt-in)."""

    enabled: bool = False
    flags: tuple[str, ...] = WRITEBACK_FLAGS

    @field_validator("flags", mode="before")
    @classmethod
    def _flag_codes(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            codes = []
            for code in value:
                text = str(code).strip().upper()
                if text == FlagCode.NO_DASHBOARD:
                    raise ValueError(
                        "NO_DASHBOARD cannot be written back (a département without a "
                        "dashboard card has no card to comment on)"
                    )
                if text not in WRITEBACK_FLAGS:
                    expected = ", ".join(WRITEBACK_FLAGS)
                    raise ValueError(f"{code!r} is not a flag code (expected some of {expected})")
                codes.append(text)
            return tuple(dict.fromkeys(codes))
        return value


# -- [digest]: the weekly digest (issue 12) ----------------------------------------------


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DigestConfig(_Section):
    """When and in which language `syncd run` sends the weekly digest (to SYNCD_DIGEST_URLS)."""

    weekday: str = "monday"
    time: str = "08:00"
    timezone: str = "Europe/Paris"
    lang: Literal["fr", "en"] = "fr"

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        day = value.strip().lower()
        if day not in WEEKDAYS:
            raise ValueError(f"{value!r} is not a weekday (monday … sunday)")
        return day

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a time of day HH:MM (e.g. 08:00)")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


class Secrets(BaseSettings):
    """Credentials, read from the environment only (never from the TOML file)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True)

    trello_api_key: SecretStr | None = Field(default=None, alias="TRELLO_API_KEY")
    trello_token: SecretStr | None = Field(default=None, alias="TRELLO_TOKEN")
    trello_api_secret: SecretStr | None = Field(default=None, alias="TRELLO_API_SECRET")
    figma_token: SecretStr | None = Field(default=None, alias="FIGMA_TOKEN")
    figma_webhook_passcode: SecretStr | None = Field(default=None, alias="FIGMA_WEBHOOK_PASSCODE")
    admin_token: SecretStr | None = Field(default=None, alias="SYNCD_ADMIN_TOKEN")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="SYNCD_OIDC_CLIENT_SECRET")
    session_secret: SecretStr | None = Field(default=None, alias="SYNCD_SESSION_SECRET")
    digest_urls: SecretStr | None = Field(default=None, alias="SYNCD_DIGEST_URLS")


def secret_text(value: SecretStr | None) -> str | None:
    """A secret's text, None when unset or empty."""
    return (value.get_secret_value() or None) if value is not None else None


class _EnvOverrides(PydanticBaseSettingsSource):
    """`SYNCD_<SECTION>_<KEY>` → {section: {key: value}}; lists as JSON or comma-separated."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ does the whole mapping

    def __call__(self) -> dict[str, Any]:
        sections = {
            name: info.annotation
            for name, info in self.settings_cls.model_fields.items()
            if isinstance(info.annotation, type)
            and issubclass(info.annotation, BaseModel)
            and not issubclass(info.annotation, BaseSettings)  # the secrets are no section
        }
        result: dict[str, dict[str, Any]] = {}
        for env_name, raw in self.environ.items():
            if not env_name.startswith(ENV_PREFIX) or env_name in NON_OVERRIDE_ENV:
                continue
            rest = env_name[len(ENV_PREFIX) :].lower()
            section = next((s for s in sections if rest.startswith(s + "_")), None)
            if section is None:
                raise ConfigError(f"{env_name}: unknown setting (no such config section)")
            key = rest[len(section) + 1 :]
            model = sections[section]
            if key not in model.model_fields:
                raise ConfigError(f"{env_name}: unknown setting {section}.{key}")
            if key == "boards":
                raise ConfigError(f"{env_name}: trello.boards can only be set in the config file")
            result.setdefault(section, {})[key] = _env_value(raw, model.model_fields[key])
        return result


def _env_value(raw: str, info: FieldInfo) -> Any:
    if "tuple" in str(info.annotation):
        text = raw.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return raw


class Settings(BaseSettings):
    """The whole validated configuration (see config.example.toml)."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    store: StoreConfig = StoreConfig()
    trello: TrelloConfig
    figma: FigmaConfig = FigmaConfig()
    governance: Rules = Rules()  # declared with the rules that read it
    schedule: ScheduleConfig = ScheduleConfig()
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    digest: DigestConfig = DigestConfig()
    writeback: WritebackConfig = WritebackConfig()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)

    @model_validator(mode="after")
    def _login_needs_its_secrets(self) -> Settings:
        if self.auth.oidc_issuer:
            if not self.auth.oidc_client_id:
                raise ValueError("auth.oidc_client_id: required when auth.oidc_issuer is set")
            secret = self.secrets.session_secret
            if secret is None or len(secret.get_secret_value()) < MIN_SESSION_SECRET:
                raise ValueError(
                    f"SYNCD_SESSION_SECRET: required when auth.oidc_issuer is set "
                    f"(at least {MIN_SESSION_SECRET} characters, the same on every replica)"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        if _LOADING.environ is not None:
            sources.append(_EnvOverrides(settings_cls, _LOADING.environ))
        if _LOADING.path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_LOADING.path))
        return tuple(sources)

    @property
    def consortium_board(self) -> BoardConfig | None:
        return next((b for b in self.trello.boards if b.role == "consortium"), None)


class _Loading:
    """What `load_settings` is loading (pydantic-settings builds sources from the class)."""

    path: Path | None = None
    environ: Mapping[str, str] | None = None


_LOADING = _Loading()


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate the configuration; raise `ConfigError` with one clear line."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get("SYNCD_CONFIG"):
        path = environ["SYNCD_CONFIG"]
    config_path = Path(path) if path is not None else None
    if config_path is not None:
        try:
            with config_path.open("rb") as handle:
                document = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read config file ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
        if "secrets" in document:
            raise ConfigError(f"{config_path}: secrets: come from the environment only")
    try:
        _LOADING.path, _LOADING.environ = config_path, environ
        secrets = Secrets(**{k: v for k, v in environ.items() if k in _SECRET_NAMES})
        return Settings(secrets=secrets)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, config_path, environ)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"environment override is not valid JSON ({exc.msg})") from None
    finally:
        _LOADING.path, _LOADING.environ = None, None


_SECRET_NAMES = frozenset(
    info.alias for info in Secrets.model_fields.values() if info.alias is not None
)


def _first_error(exc: ValidationError, path: Path | None, environ: Mapping[str, str]) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    env_name = ENV_PREFIX + "_".join(str(part) for part in error["loc"][:2]).upper()
    if len(error["loc"]) == 2 and env_name in environ:  # the bad value came from an override
        path, location = None, f"{location} (from {env_name})"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "missing (required)"
    message = message.removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if not location:  # a check across sections (see Settings) names its keys itself
        return f"{message}{more}"
    where = f"{path}: " if path is not None else ""
    return f"{where}{location}: {message}{more}"


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")
