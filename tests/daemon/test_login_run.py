"""`syncd run` and `syncd check` as real subprocesses with a login whose provider cannot be
reached: one clear line at start, 503 on /login, the rest of the daemon unaffected."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adapters.sandbox import Sandbox
from syncd.demo import demo_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "http://127.0.0.1:9"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setup(tmp_path: Path, sandbox: Sandbox) -> tuple[Path, dict[str, str], int]:
    port = _free_port()
    config = tmp_path / "syncd.toml"
    config.write_text(
        demo_config(
            sandbox,
            store_url=f"sqlite:///{tmp_path / 'syncd.db'}",
            figma=False,
            extra=(
                f'\n[server]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
                f'\n[auth]\noidc_issuer = "{UNREACHABLE}"\noidc_client_id = "syncd"\n'
                'allowed_domains = ["beta.gouv.fr"]\n'
            ),
        ),
        encoding="utf-8",
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_"))
    }
    env.update(
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        TRELLO_API_SECRET=sandbox.api_secret,
        SYNCD_SESSION_SECRET="a-session-secret-for-the-daemon-test",
        SYNCD_OIDC_CLIENT_SECRET="the-client-secret",
        SYNCD_LOG_FORMAT="json",
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return config, env, port


def test_run_with_an_unreachable_provider(tmp_path: Path) -> None:
    with Sandbox() as sandbox:
        config, env, port = _setup(tmp_path, sandbox)
        base = f"http://127.0.0.1:{port}"
        stderr = tmp_path / "daemon.stderr"
        with stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "--config", str(config), "run"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with httpx.Client(base_url=base, timeout=10) as http:
                assert http.get("/healthz").status_code == 200
                assert http.get("/login").status_code == 503
                assert http.get("/").headers["location"] == "/login"
                assert http.get("/api/report").status_code == 401
                assert http.get("/metrics").status_code == 200
        finally:
            process.terminate()
            assert process.wait(15) == 0
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    errors = [line for line in lines if line.get("level") == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["event"].startswith("OpenID provider unavailable")
    assert f"cannot reach {UNREACHABLE}/.well-known/openid-configuration" in errors[0]["error"]
    modes = [line for line in lines if line.get("event") == "access mode"]
    assert modes and modes[0]["mode"] == "login"
    text = stderr.read_text()
    assert "the-client-secret" not in text and "a-session-secret-for-the-daemon-test" not in text
    assert "Traceback" not in text


def test_check_reports_the_mode_and_the_unreachable_provider(tmp_path: Path) -> None:
    with Sandbox() as sandbox:
        config, env, _port = _setup(tmp_path, sandbox)
        check = subprocess.run(
            [sys.executable, "-m", "syncd", "--config", str(config), "check"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert check.returncode == 1, check.stdout + check.stderr
    assert "ok    access: OpenID Connect login (0 allowed e-mail(s), 1 allowed domain(s))" in (
        check.stdout
    )
    assert f"FAIL  oidc provider: cannot reach {UNREACHABLE}/" in check.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), "check"],
        cwd=REPO,
        env={k: v for k, v in env.items() if k != "SYNCD_SESSION_SECRET"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "SYNCD_SESSION_SECRET: required when auth.oidc_issuer is set "
            "(at least 16 characters, the same on every replica)"
        )
    )
