"""Hostile requests against a real `syncd run` over loopback (issue 9's target), shared by
`tests/daemon/test_fuzz_run.py` (a few hundred, marked slow) and `bench/fuzz_http.py`
(thousands).

`running_syncd()` starts the sandbox and ``syncd run`` (a subprocess on 127.0.0.1, a free port,
SQLite in a temporary folder, JSON logs to a file) and waits for ``/readyz`` 200;
`fuzz_syncd(run, requests=N)` sends N hostile requests drawn from `hostile.hostile_requests`
(every route, with and without credentials), each over its own connection, with a real sandbox
change delivered (signed) every `valid_every` requests, then checks and returns the figures:
answers by status, 5xx, deliveries refused and whether any of them left a trace in the store,
valid deliveries applied, the daemon alive and ready, tracebacks in its log.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostile import (
    FIGMA_PATH,
    TRELLO_PATH,
    HostileRequest,
    Target,
    hostile_requests,
    problems,
    send_http,
    trello_signature,
)
from hypothesis import HealthCheck, Phase, given, settings

from adapters.sandbox import CONSORTIUM_SHORT_LINK, FIGMA_FILE_KEY, PRODUCT_SHORT_LINK, Sandbox
from adapters.sandbox.figma_world import build_sample_figma

REPO = Path(__file__).resolve().parents[2]
PASSCODE = "figma-passcode"
ADMIN = "admin-token-xyz"


@dataclass
class RunningSyncd:
    sandbox: Sandbox
    process: subprocess.Popen[bytes]
    port: int
    db: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str, *, bearer: bool = False) -> tuple[int, bytes]:
        headers = ((b"authorization", f"Bearer {ADMIN}".encode()),) if bearer else ()
        answer = send_http(
            "127.0.0.1", self.port, HostileRequest("check", "GET", path, b"", headers)
        )
        assert answer is not None
        return answer.status, answer.body

    def store(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_syncd(folder: Path | None = None, *, log_level: str = "INFO") -> Iterator[RunningSyncd]:
    """The sandbox and ``syncd run`` against it, ready; both stopped at the end."""
    with tempfile.TemporaryDirectory() as scratch, Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        run = start_syncd(sandbox, folder or Path(scratch), log_level=log_level)
        try:
            yield run
        finally:
            stop_syncd(run)


def start_syncd(
    sandbox: Sandbox,
    where: Path,
    *,
    log_level: str = "INFO",
    env: dict[str, str] | None = None,
) -> RunningSyncd:
    """``syncd run`` against `sandbox` (a free port, SQLite ``where/syncd.db``, JSON logs
    appended to ``where/syncd.log``), ready. Started again in the same folder, it reopens the
    same store (the kill -9 tests). `env`: more environment variables for it."""
    port = _free_port()
    db, config, log = where / "syncd.db", where / "syncd.toml", where / "syncd.log"
    config.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n'
        f'[trello]\napi_base = "{sandbox.trello_api_base}"\n'
        f'[[trello.boards]]\nid = "{CONSORTIUM_SHORT_LINK}"\nrole = "consortium"\n'
        f'[[trello.boards]]\nid = "{PRODUCT_SHORT_LINK}"\nrole = "product"\n'
        f'[figma]\napi_base = "{sandbox.figma_api_base}"\nfiles = ["{FIGMA_FILE_KEY}"]\n'
        '[governance]\ndepartments = ["14", "22", "26", "55", "62", "77"]\n'
        "[schedule]\npoll_seconds = 300\nfull_sync_hours = 24\n"
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'public_url = "http://127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    extra = env or {}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_"))
    }
    env.update(extra)
    env.update(
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        TRELLO_API_SECRET=sandbox.api_secret,
        FIGMA_TOKEN="sandbox-figma-token",
        FIGMA_WEBHOOK_PASSCODE=PASSCODE,
        SYNCD_ADMIN_TOKEN=ADMIN,
        SYNCD_LOG_FORMAT="json",
        SYNCD_LOG_LEVEL=log_level,
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    with log.open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(config), "run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    run = RunningSyncd(sandbox, process, port, db, log)
    try:
        _wait_ready(run, 90)
    except BaseException:
        stop_syncd(run)
        raise
    return run


def stop_syncd(run: RunningSyncd) -> None:
    """SIGTERM (then SIGKILL after 15 s) unless it already exited."""
    process = run.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_ready(run: RunningSyncd, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not run.alive():
            raise RuntimeError(f"syncd run exited:\n{run.log.read_text()[-3000:]}")
        try:
            if run.get("/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"syncd run not ready:\n{run.log.read_text()[-3000:]}")


@dataclass
class Figures:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)  # 0: the client went away
    by_kind: Counter[str] = field(default_factory=Counter)
    five_xx: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # answers breaking `hostile.problems`
    refused_deliveries: int = 0
    refused_ids: set[str] = field(default_factory=set)
    accepted_ids: set[str] = field(default_factory=set)
    stored_from_refused: list[str] = field(default_factory=list)
    valid_sent: int = 0
    valid_applied: int = 0
    valid_failures: list[str] = field(default_factory=list)
    alive_after: bool = False
    ready_after: int = 0
    report_after: int = 0
    degraded_after: int = -1
    tracebacks_in_log: int = 0
    errors_in_log: int = 0

    def lines(self) -> list[str]:
        by_class: Counter[str] = Counter()
        for status, count in self.statuses.items():
            by_class[f"{status // 100}xx" if status else "client gone"] += count
        return [
            f"hostile requests      {self.requests} in {self.seconds:.1f} s "
            f"({self.requests / max(self.seconds, 1e-9):.0f}/s), every route, with and without "
            "credentials",
            "answers               "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_class.items()))
            + "  ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
            + ")",
            f"5xx answers           {len(self.five_xx)}",
            f"other wrong answers   {len(self.wrong)}",
            f"deliveries refused    {self.refused_deliveries} "
            f"({len(self.refused_ids)} with an action id)",
            f"stored from refused   {len(self.stored_from_refused)}",
            f"valid deliveries      {self.valid_applied} applied of {self.valid_sent} sent",
            f"daemon afterwards     alive={self.alive_after} /readyz={self.ready_after} "
            f"/api/report={self.report_after} degraded rows={self.degraded_after}",
            f"log                   {self.tracebacks_in_log} tracebacks, "
            f"{self.errors_in_log} lines at ERROR",
        ]


def _target(run: RunningSyncd) -> Target:
    w = run.sandbox.world
    return Target(
        callback_url=run.url + TRELLO_PATH,
        trello_secret=run.sandbox.api_secret,
        figma_passcode=PASSCODE,
        admin_token=ADMIN,
        board_id=w.board(CONSORTIUM_SHORT_LINK)["id"],
        short_link=CONSORTIUM_SHORT_LINK,
        card_ids=tuple(
            w.find_card(n, board=CONSORTIUM_SHORT_LINK)["id"] for n in ("Meuse", "Somme")
        ),
        list_ids=tuple(w.find_list(CONSORTIUM_SHORT_LINK, n) for n in ("Fait", "Actions en cours")),
        figma_key=FIGMA_FILE_KEY,
        date=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 1)),
    )


def _deliver_valid(run: RunningSyncd, figures: Figures) -> None:
    """A real sandbox change, delivered signed; applied within 20 s (checked in the store)."""
    w = run.sandbox.world
    card = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)["id"]
    name = "Fait" if figures.valid_sent % 2 == 0 else "Départements"
    list_id = w.find_list(CONSORTIUM_SHORT_LINK, name)
    action = w.move_card(card, list_id)
    body = json.dumps({"action": action, "model": {"id": action["data"]["board"]["id"]}}).encode()
    signature = trello_signature(run.sandbox.api_secret, body, run.url + TRELLO_PATH)
    request = HostileRequest(
        "valid",
        "POST",
        TRELLO_PATH,
        headers=((b"x-trello-webhook", signature.encode()),),
        body=body,
    )
    figures.valid_sent += 1
    answer = send_http("127.0.0.1", run.port, request)
    if answer is None or answer.status != 200:
        figures.valid_failures.append(
            f"answered {answer and answer.status}: {answer and answer.body!r}"
        )
        return
    figures.accepted_ids.add(action["id"])
    deadline = time.monotonic() + 20
    row = None
    while time.monotonic() < deadline:
        with run.store() as store:
            row = store.execute("SELECT list_id FROM card WHERE id = ?", (card,)).fetchone()
        if row is not None and row[0] == list_id:
            figures.valid_applied += 1
            return
        time.sleep(0.05)
    figures.valid_failures.append(f"{action['id']} not applied in 20 s: list {row} != {list_id}")


def fuzz_syncd(run: RunningSyncd, *, requests: int, valid_every: int = 25) -> Figures:
    """Send `requests` hostile requests to `run` and check everything (see the module
    docstring); returns the figures (the caller asserts or prints them)."""
    figures = Figures()
    target = _target(run)
    started = time.perf_counter()

    @settings(
        max_examples=requests,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=hostile_requests(target))
    def one(request: HostileRequest) -> None:
        try:
            answer = send_http("127.0.0.1", run.port, request)
        except OSError as exc:  # no answer at all: as bad as a 5xx
            figures.five_xx.append(f"no answer ({exc}): {request.describe()[:300]}")
            return
        figures.requests += 1
        status = answer.status if answer is not None else 0
        figures.statuses[status] += 1
        figures.by_kind[request.kind.split(" ")[0]] += 1
        if status >= 500:
            figures.five_xx.append(f"{status}: {request.describe()[:300]}")
        found = [p for p in problems(request, answer) if not p.startswith("answered 5")]
        if found:
            figures.wrong.append(f"{found}: {request.describe()[:300]}")
        delivery = request.method == "POST" and request.path in (TRELLO_PATH, FIGMA_PATH)
        if delivery and (answer is None or answer.status >= 400):
            figures.refused_deliveries += 1
            if request.action_id:
                figures.refused_ids.add(request.action_id)
        elif delivery and request.action_id and answer is not None and answer.status == 200:
            figures.accepted_ids.add(request.action_id)
        if figures.requests % valid_every == 0:
            _deliver_valid(run, figures)

    one()
    figures.seconds = time.perf_counter() - started
    _deliver_valid(run, figures)  # still applied at the end
    _check_afterwards(run, figures)
    return figures


def _check_afterwards(run: RunningSyncd, figures: Figures) -> None:
    time.sleep(1.0)  # the worker finishes what was accepted
    figures.alive_after = run.alive()
    figures.ready_after = run.get("/readyz")[0]
    status, body = run.get("/api/report", bearer=True)
    figures.report_after = status
    if status == 200:
        figures.degraded_after = len(json.loads(body)["degraded"])
    refused_only = sorted(figures.refused_ids - figures.accepted_ids)
    with run.store() as store:
        for action_id in refused_only:
            for table, column in (
                ("action", "id"),
                ("webhook_delivery", "action_id"),
                ("card_version", "action_id"),
            ):
                query = f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1"
                if store.execute(query, (action_id,)).fetchone():
                    figures.stored_from_refused.append(f"{table}: {action_id}")
        written = {
            row[0]
            for row in store.execute(
                "SELECT DISTINCT action_id FROM card_version WHERE source = 'webhook'"
            )
        }
    figures.stored_from_refused += [
        f"card_version of an unaccepted delivery: {action_id}"
        for action_id in sorted(written - figures.accepted_ids - {None})
    ]
    for line in run.log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "Traceback" in line or '"exception"' in line or '"exc_info"' in line:
            figures.tracebacks_in_log += 1
        try:
            level = json.loads(line).get("level")
        except ValueError:
            level = "error" if line.startswith(("ERROR", "CRITICAL")) else None
        if level in ("error", "critical"):
            figures.errors_in_log += 1


def assert_clean(figures: Figures) -> None:
    """Issue 9's target, as assertions."""
    assert figures.five_xx == [], figures.five_xx[:5]
    assert figures.wrong == [], figures.wrong[:5]
    assert figures.stored_from_refused == [], figures.stored_from_refused[:5]
    assert figures.alive_after, "syncd run died"
    assert figures.ready_after == 200, f"/readyz {figures.ready_after}"
    assert figures.report_after == 200, f"/api/report {figures.report_after}"
    assert figures.degraded_after == 0, f"{figures.degraded_after} degraded rows"
    assert figures.valid_applied == figures.valid_sent > 0, figures.valid_failures[:5]
    assert figures.tracebacks_in_log == figures.errors_in_log == 0, "tracebacks or errors logged"


def summary(figures: Figures) -> dict[str, Any]:
    return {line.split("  ")[0]: line for line in figures.lines()}
