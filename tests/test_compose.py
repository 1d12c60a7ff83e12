"""docker-compose.yml and its proxy, without Docker (no engine here): the YAML is parsed and
checked (services, build context, environment and secrets by name only, health checks, the
start order) and the Caddyfile's upstreams must be the syncd replicas on the port they listen
on. What this cannot show (that the images build and the stack starts) is said in the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SECRETS = {
    "TRELLO_API_KEY",
    "TRELLO_TOKEN",
    "TRELLO_API_SECRET",
    "FIGMA_TOKEN",
    "FIGMA_WEBHOOK_PASSCODE",
    "SYNCD_ADMIN_TOKEN",
    "SYNCD_OIDC_CLIENT_SECRET",
    "SYNCD_SESSION_SECRET",
    "SYNCD_DIGEST_URLS",
}
REFERENCE = re.compile(r"^\$\{[A-Z_]+(:?[-?][^}]*)?\}$")  # ${NAME}, ${NAME:-default}, ${NAME:?why}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "build" in service and "syncd" in name
    }


def test_postgresql_two_replicas_and_a_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "syncd-1", "syncd-2", "proxy"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["proxy"]["image"].startswith("caddy:")
    assert len(replicas(compose)) == 2


def test_replicas_build_from_the_projects_dockerfile(compose: dict[str, Any]) -> None:
    for service in replicas(compose).values():
        build = service["build"]
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == REPO / "Dockerfile"
        assert service.get("command", ["syncd", "run"])[:2] == ["syncd", "run"]


def test_replicas_share_one_postgresql_store_and_one_public_url(compose: dict[str, Any]) -> None:
    environments = [service["environment"] for service in replicas(compose).values()]
    for environment in environments:
        url = environment["SYNCD_STORE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
        assert ":" not in url.split("://")[1].split("@")[0], "no password in the store URL"
        assert REFERENCE.match(environment["PGPASSWORD"])
        assert environment["SYNCD_SERVER_HOST"] == "0.0.0.0"
    assert len({e["SYNCD_STORE_URL"] for e in environments}) == 1
    assert len({e["SYNCD_SERVER_PUBLIC_URL"] for e in environments}) == 1


def test_secrets_are_passed_by_name_only(compose: dict[str, Any]) -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    for service in replicas(compose).values():
        environment = service["environment"]
        assert environment.keys() >= SECRETS
        for name in SECRETS:
            assert environment[name] is None, f"{name} must come from the environment"
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")) and value:
                assert REFERENCE.match(str(value)), f"{name}: {key} is written in the file"
    assert "sandbox-secret" not in text and "sandbox-token" not in text


def test_health_checks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for service in replicas(compose).values():
        assert any("/healthz" in part for part in service["healthcheck"]["test"])
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    proxy = services["proxy"]
    assert proxy["healthcheck"]["test"]
    assert {name: dep["condition"] for name, dep in proxy["depends_on"].items()} == {
        "syncd-1": "service_healthy",
        "syncd-2": "service_healthy",
    }


def test_the_proxy_sends_to_both_replicas_on_their_port(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in proxy["volumes"] if ":ro" in volume)
    source = mounts.get("./deploy/Caddyfile")
    assert source == "/etc/caddy/Caddyfile"
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    upstreams = re.search(r"reverse_proxy\s+([^{\n]+)\{", caddyfile)
    assert upstreams is not None
    ports = {service["environment"]["SYNCD_SERVER_PORT"] for service in replicas(compose).values()}
    assert ports == {"8787"}
    assert sorted(upstreams.group(1).split()) == sorted(
        f"{name}:8787" for name in replicas(compose)
    )
    assert "health_uri /healthz" in caddyfile
    assert caddyfile.count("{") == caddyfile.count("}")


def test_the_readme_says_how_to_start_it() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docker compose up -d --build" in readme
    assert "docker-compose.yml" in readme
