"""The OpenID Connect relying party behind ``/login`` and ``/auth/callback`` (Authlib).

Owns, for the one provider named by ``auth.oidc_issuer``:

- **discovery**: ``<issuer>/.well-known/openid-configuration`` read once at start (and again,
  at most every `RETRY_SECONDS`, while it fails), checked by `check_metadata`: a JSON object
  naming the same issuer, the endpoints a login needs, PKCE S256, an asymmetric ID token
  signing algorithm;
- **the login**: Authlib's Starlette client, authorization code flow with PKCE (S256), ``state``
  and ``nonce`` kept in the session until the callback;
- **the callback's checks**: the ``iss`` parameter (RFC 9207) when sent, the state, then the ID
  token: signature against the provider's JWKS, ``iss``, ``aud``, ``exp``, ``iat``, ``nonce``;
  the e-mail from the ID token or else from the userinfo endpoint, whose answer may be JSON or a
  signed JWT (``application/jwt``, as ProConnect does), verified the same way and about the
  same ``sub``; an ``email_verified`` of false is refused;
- **RP-initiated logout**: the ``end_session_endpoint`` URL when the provider offers one.

Every failure is a `LoginRefused` (the client's or the token's fault: a 4xx) or a
`ProviderUnavailable` (the provider cannot be reached or answers nonsense: 503), each with a
one-line reason that never contains a token or a secret.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.oauth2.base import OAuth2Error
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import Request
from starlette.responses import Response

from syncd.config import AuthConfig

try:  # Authlib's HTTP client uses httpx2 when it is installed, else httpx
    import httpx2 as _authlib_http  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _authlib_http = httpx
HTTP_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, _authlib_http.HTTPError)

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT_SECONDS = 10.0
RETRY_SECONDS = 30.0
LEEWAY_SECONDS = 60
CLIENT_NAME = "oidc"
STATE_PREFIX = f"_state_{CLIENT_NAME}_"
_REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderUnavailable(Exception):
    """The provider cannot be reached or its answers make no sense (503, one line)."""


class LoginRefused(Exception):
    """The login cannot be accepted: `status` (4xx) and a one-line `reason`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in (the e-mail not yet checked against the allow-list)."""

    email: str
    subject: str
    id_token: str
    email_from: str  # "id_token", "userinfo" (JSON) or "userinfo_jwt"


def _starlette_oauth() -> Any:
    """Authlib's Starlette registry, imported on first use (a login is configured).

    Authlib warns, on stderr at every start, that it runs on httpx rather than httpx2; that
    fallback is supported, and syncd's output stays one line per event, so the warning is muted.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.integrations.starlette_client import OAuth

    return OAuth()


def check_metadata(document: Any, issuer: str) -> dict[str, Any]:
    """The discovery document if a login can work with it, else `ProviderUnavailable`."""
    if not isinstance(document, dict):
        raise ProviderUnavailable("discovery document is not a JSON object")
    named = document.get("issuer")
    if not isinstance(named, str) or named.rstrip("/") != issuer.rstrip("/"):
        raise ProviderUnavailable(
            f"discovery names issuer {named!r}, not the configured {issuer!r}"
        )
    missing = [key for key in _REQUIRED_ENDPOINTS if not _http_url(document.get(key))]
    if missing:
        raise ProviderUnavailable(f"discovery lacks {', '.join(missing)}")
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise ProviderUnavailable("the provider does not support PKCE with S256")
    algorithms = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    usable = _asymmetric(algorithms)
    if not usable:
        raise ProviderUnavailable(
            f"the provider signs ID tokens with {algorithms}, none verifiable against its JWKS"
        )
    metadata = dict(document)
    metadata["id_token_signing_alg_values_supported"] = usable
    metadata["_loaded_at"] = time.time()  # Authlib: already loaded, do not fetch again
    return metadata


def _asymmetric(algorithms: Any) -> list[str]:
    if not isinstance(algorithms, list):
        return []
    return [a for a in algorithms if isinstance(a, str) and a[:2] in ("RS", "PS", "ES", "Ed")]


def _http_url(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_VSCHAR = re.compile(r"[\x20-\x7e]{1,2048}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class OidcClient:
    """One provider, one client registration; see the module docstring."""

    def __init__(
        self,
        config: AuthConfig,
        *,
        client_secret: str | None,
        redirect_uri: str,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.issuer = config.oidc_issuer
        self.client_id = config.oidc_client_id
        self.scopes = tuple(config.oidc_scopes)
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.last_error: str | None = None
        self._metadata: dict[str, Any] | None = None
        self._retry_at = 0.0
        self._has_secret = bool(client_secret)
        self._app: Any = _starlette_oauth().register(
            CLIENT_NAME,
            client_id=self.client_id,
            client_secret=client_secret,
            client_kwargs={
                "scope": " ".join(self.scopes),
                "code_challenge_method": "S256",
                "timeout": timeout,
            },
        )

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    @property
    def end_session_endpoint(self) -> str | None:
        url = (self._metadata or {}).get("end_session_endpoint")
        return url if _http_url(url) else None

    # -- discovery ------------------------------------------------------------------------

    def discover(self) -> dict[str, Any]:
        """Read the discovery document now (start-up, `syncd check`); `ProviderUnavailable`."""
        try:
            response = httpx.get(self.discovery_url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise self._failed(f"cannot reach {self.discovery_url}: {_one_line(exc)}") from None
        return self._accept(response)

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, read again if it failed more than `RETRY_SECONDS` ago."""
        if self._metadata is not None:
            return self._metadata
        if self.last_error is not None and time.monotonic() < self._retry_at:
            raise ProviderUnavailable(self.last_error)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.discovery_url)
        except httpx.HTTPError as exc:
            raise self._failed(f"cannot reach {self.discovery_url}: {_one_line(exc)}") from None
        return self._accept(response)

    def _accept(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise self._failed(f"{self.discovery_url} answered HTTP {response.status_code}")
        try:
            metadata = check_metadata(response.json(), self.issuer)
        except ValueError:
            raise self._failed(f"{self.discovery_url} did not answer JSON") from None
        except ProviderUnavailable as exc:
            raise self._failed(f"{self.discovery_url}: {exc}") from None
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if not self._has_secret:
            method = "none"  # a public client: PKCE is its proof
        elif "client_secret_basic" in methods or "client_secret_post" not in methods:
            method = "client_secret_basic"
        else:
            method = "client_secret_post"  # e.g. ProConnect
        self._app.client_kwargs["token_endpoint_auth_method"] = method
        self._app.server_metadata.clear()
        self._app.server_metadata.update(metadata)
        self._metadata = metadata
        self.last_error = None
        return metadata

    def _failed(self, reason: str) -> ProviderUnavailable:
        self.last_error = reason
        self._retry_at = time.monotonic() + RETRY_SECONDS
        return ProviderUnavailable(reason)

    # -- login ----------------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        """The redirect to the provider; one pending login per browser (older ones dropped)."""
        await self.metadata()
        for key in [k for k in request.session if k.startswith(STATE_PREFIX)]:
            del request.session[key]
        response: Response = await self._app.authorize_redirect(request, self.redirect_uri)
        return response

    async def finish(self, request: Request) -> Identity:
        """Check the provider's redirect and the tokens; the logged-in identity."""
        metadata = await self.metadata()
        issuer = metadata["issuer"]
        for name in ("code", "state"):  # RFC 6749: visible ASCII; refused here, not sent on
            value = request.query_params.get(name)
            if value is not None and not _VSCHAR.fullmatch(value):
                raise LoginRefused(400, f"the callback's {name} is not printable ASCII")
        sent_iss = request.query_params.get("iss")
        if sent_iss is not None and sent_iss != issuer:
            raise LoginRefused(400, f"the callback names issuer {sent_iss!r}, not {issuer!r}")
        try:
            token = await self._app.authorize_access_token(
                request, claims_options=self._claims_options(issuer), leeway=LEEWAY_SECONDS
            )
        except MismatchingStateError:
            raise LoginRefused(
                400, "state does not match a login started in this browser (tampered or replayed)"
            ) from None
        except OAuthError as exc:
            detail = f": {exc.description}" if exc.description else ""
            reason = f"the provider refused the login ({exc.error}){detail}"
            raise LoginRefused(400, reason) from None
        except JoseError as exc:
            raise LoginRefused(401, f"ID token refused: {_jose_reason(exc)}") from None
        except OAuth2Error as exc:  # the redirect itself is not an answer (no code, …)
            reason = f"the provider's redirect is not usable ({exc.error})"
            raise LoginRefused(400, reason) from None
        except (*HTTP_ERRORS, ValueError) as exc:
            raise self._unavailable("token endpoint", exc) from None
        claims = token.get("userinfo")
        if not claims or not isinstance(token.get("id_token"), str):
            raise LoginRefused(401, "the provider returned no ID token")
        subject = str(claims["sub"])
        email, verified = claims.get("email"), claims.get("email_verified")
        email_from = "id_token"
        if not email and metadata.get("userinfo_endpoint"):
            info, email_from = await self._userinfo(token, metadata, subject)
            email, verified = info.get("email"), info.get("email_verified")
        if not isinstance(email, str) or not email.strip():
            raise LoginRefused(
                403, f"the provider gave no e-mail (scopes asked: {' '.join(self.scopes)})"
            )
        email = email.strip()
        if verified is False or verified == "false":
            raise LoginRefused(403, f"{email}: e-mail not verified by the provider")
        return Identity(email, subject, token["id_token"], email_from)

    def _claims_options(self, issuer: str) -> dict[str, dict[str, Any]]:
        # Authlib checks only the issuer by default: audience and expiry are made essential.
        return {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }

    async def _userinfo(
        self, token: dict[str, Any], metadata: dict[str, Any], subject: str
    ) -> tuple[dict[str, Any], str]:
        """The userinfo claims about `subject` and how they came ("userinfo", "userinfo_jwt")."""
        try:
            response = await self._app.get(metadata["userinfo_endpoint"], token=token)
        except HTTP_ERRORS as exc:
            raise self._unavailable("userinfo endpoint", exc) from None
        if response.status_code != 200:
            raise ProviderUnavailable(f"userinfo endpoint answered HTTP {response.status_code}")
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        source = "userinfo_jwt" if kind == "application/jwt" else "userinfo"
        if source == "userinfo_jwt":
            info = await self._verify_userinfo_jwt(response.text.strip(), metadata)
        else:
            try:
                info = response.json()
            except ValueError:
                raise ProviderUnavailable("userinfo is neither JSON nor a signed JWT") from None
        if not isinstance(info, dict):
            raise ProviderUnavailable("userinfo is not a JSON object")
        if info.get("sub") != subject:
            raise LoginRefused(401, "userinfo is about another subject than the ID token")
        return info, source

    async def _verify_userinfo_jwt(self, text: str, metadata: dict[str, Any]) -> dict[str, Any]:
        algorithms = (
            _asymmetric(metadata.get("userinfo_signing_alg_values_supported"))
            or (metadata["id_token_signing_alg_values_supported"])
        )
        try:
            try:
                keys = KeySet.import_key_set(await self._app.fetch_jwk_set())
                decoded = jwt.decode(text, keys, algorithms=algorithms)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                keys = KeySet.import_key_set(await self._app.fetch_jwk_set(force=True))
                decoded = jwt.decode(text, keys, algorithms=algorithms)
            # iss and aud are checked when present (OpenID Connect Core 5.3.2)
            JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"value": metadata["issuer"]},
                aud={"value": self.client_id},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise LoginRefused(401, f"userinfo JWT refused: {_jose_reason(exc)}") from None
        except HTTP_ERRORS as exc:
            raise self._unavailable("jwks_uri", exc) from None
        return dict(decoded.claims)

    def _unavailable(self, what: str, exc: BaseException) -> ProviderUnavailable:
        return ProviderUnavailable(f"{what}: {_one_line(exc)}")

    # -- logout ---------------------------------------------------------------------------

    async def logout_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """Where to end the provider session too, or None when it offers no end_session."""
        if self.end_session_endpoint is None:
            return None
        result = await self._app.create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri,
            id_token_hint=id_token,
            client_id=self.client_id,
        )
        return str(result["url"])


def _jose_reason(exc: JoseError) -> str:
    if isinstance(exc, ExpiredTokenError):
        return "expired"
    if isinstance(exc, ClaimError):
        return f"claim {exc.claim!r} is missing or wrong"
    if isinstance(exc, InvalidKeyIdError):
        return "signed with a key the provider does not publish"
    if isinstance(exc, BadSignatureError):
        return "signature does not verify against the provider's keys"
    return _one_line(exc)
