"""The Dockerfile, without Docker: its instructions are parsed and checked (slim base, non-root
user, /data volume, HEALTHCHECK, CMD), then its COPY and ``RUN pip install`` steps are replayed
into a fresh virtualenv (``--system-site-packages``, so dependencies resolve from the ones
already installed) and the installed ``syncd`` must run; the HEALTHCHECK command is run against
a local /healthz."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
        current = ""
    return result


def env_pairs(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def test_base_user_volume_and_command(steps: list[tuple[str, str]]) -> None:
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("FROM", "python:3.12-slim")
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    env: dict[str, str] = {}
    for kind, args in steps:
        if kind == "ENV":
            env.update(env_pairs(args))
    assert env["SYNCD_STORE_URL"] == "sqlite:////data/syncd.db"
    assert env["SYNCD_SERVER_HOST"] == "0.0.0.0"
    assert env["SYNCD_CONFIG"] == "/config/syncd.toml"
    assert ("EXPOSE", "8787") in steps
    volumes = [json.loads(args) for kind, args in steps if kind == "VOLUME"]
    assert ["/data"] in volumes
    assert json.loads(next(args for kind, args in steps if kind == "CMD")) == ["syncd", "run"]
    healthcheck = next(args for kind, args in steps if kind == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "python" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert any(k == "RUN" and "--no-cache-dir" in a for k, a in steps)


def _healthcheck_command(steps: list[tuple[str, str]]) -> list[str]:
    args = next(args for kind, args in steps if kind == "HEALTHCHECK")
    return list(json.loads(args[args.index("CMD") + 3 :].strip()))


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_healthcheck_command_works_without_curl(
    steps: list[tuple[str, str]], health_server: int
) -> None:
    command = _healthcheck_command(steps)
    assert command[0] == "python"
    env = {**os.environ, "SYNCD_SERVER_PORT": str(health_server)}
    ok = subprocess.run([sys.executable, *command[1:]], env=env, timeout=20)
    assert ok.returncode == 0
    env["SYNCD_SERVER_PORT"] = "1"  # nothing listens there
    down = subprocess.run([sys.executable, *command[1:]], env=env, timeout=20, capture_output=True)
    assert down.returncode != 0


def _replay_copies(steps: list[tuple[str, str]], context: Path) -> Path:
    """Reproduce the COPY steps (into WORKDIR) from the repository; return the WORKDIR."""
    workdir = context
    for kind, args in steps:
        if kind == "WORKDIR" and workdir == context:
            workdir = context / args.strip("/").replace("/", "_")
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "RUN" and "pip install" in args:
            break
        elif kind == "COPY":
            parts = shlex.split(args)
            sources, target = parts[:-1], parts[-1]
            for source in sources:
                origin = REPO / source
                assert origin.exists(), f"COPY {source}: missing from the repository"
                destination = workdir if target in ("./", ".") else workdir / target
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        destination,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                        dirs_exist_ok=True,
                    )
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination / origin.name)
    return workdir


@pytest.mark.slow
def test_install_steps_in_a_fresh_venv(steps: list[tuple[str, str]], tmp_path: Path) -> None:
    workdir = _replay_copies(steps, tmp_path / "context")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(env_dir),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    installs = [args for kind, args in steps if kind == "RUN" and args.startswith("pip install")]
    assert installs, "no RUN pip install step"
    for command in installs:
        done = subprocess.run(
            command, shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=80
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    outside = tmp_path / "elsewhere"  # not the repository: only the installed package counts
    outside.mkdir()
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import syncd, state, adapters; print(syncd.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout
    helped = subprocess.run(
        [str(bin_dir / "syncd"), "--help"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert helped.returncode == 0, helped.stderr
    assert "run" in helped.stdout and "webhooks" in helped.stdout
    templates = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "from importlib.resources import files; "
            "print((files('syncd.report') / 'templates' / 'report.html.j2').is_file(), "
            "(files('state') / 'migrations' / 'env.py').is_file())",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert templates.stdout.split() == ["True", "True"], templates.stderr
