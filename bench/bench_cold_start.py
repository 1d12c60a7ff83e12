"""Benchmark of a cold `syncd` process: `syncd sync` and `syncd report` of the sample, each run as
a fresh ``python -m syncd.cli`` subprocess against the sandbox (loopback only).

Starts the sandbox (the sample boards and Figma file, no rate limit) in this process, writes a
config per source tree, takes a first sync (a new store: Alembic creates the schema), then runs
each command ``--runs`` times and prints, per command: median and min wall time, median CPU
time (user + sys), requests to the sandbox and the child's peak RSS. Then ``--importtime`` runs
with ``python -X importtime``: the time spent importing (per module, the min over those runs),
its share of the median wall time, and the heaviest top-level packages.

The **floor**: a fresh process importing only the third-party modules a `syncd sync` imported
(the libraries the contract fixes: SQLAlchemy with SQLModel's ORM, pydantic-settings, Typer,
requests and py-trello, tenacity, structlog…; taken from that run's ``-X importtime``, in its
order), with the collector held off, Rich hidden from structlog and one collection then a freeze
at exit, as `syncd.cli` does, and no module of syncd: what a cold `syncd sync` costs before any
line of syncd runs. Its runs are interleaved with the commands'.

``--source DIR`` (repeatable) measures another checkout of syncd, e.g. the code before a change
(``git archive <commit> | tar -x -C /tmp/before``); with several, the runs are interleaved so
that every tree sees the same machine load.

    python bench/bench_cold_start.py [--runs 10] [--importtime 3] [--source DIR ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from peak_rss import Measured

from adapters.sandbox import Sandbox
from adapters.sandbox import build_sample_world as sample
from adapters.sandbox.figma_world import build_sample_figma
from syncd.demo import KNOWN_DEPARTMENTS, demo_config

REPO = Path(__file__).resolve().parents[1]
COMMANDS: dict[str, tuple[str, ...]] = {
    "sync": ("sync",),
    "report": ("report", "--format", "json"),
}


@dataclass
class Tree:
    """One source tree of syncd, its config and store, and what its runs measured."""

    label: str
    source: Path
    config: Path
    walls: dict[str, list[float]] = field(default_factory=dict)
    cpus: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, list[int]] = field(default_factory=dict)
    peak_kib: dict[str, int] = field(default_factory=dict)
    imports: dict[str, dict[str, int]] = field(default_factory=dict)


def write_config(sandbox: Sandbox, folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "syncd.toml"
    path.write_text(
        demo_config(
            sandbox, store_url=f"sqlite:///{folder / 'store.db'}", departments=KNOWN_DEPARTMENTS
        ),
        encoding="utf-8",
    )
    return path


def environment(sandbox: Sandbox, tree: Tree) -> dict[str, str]:
    variables = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_", "PYTHON"))
    }
    variables.update(
        PYTHONPATH=str(tree.source),
        SYNCD_CONFIG=str(tree.config),
        SYNCD_LOG_FORMAT="json",
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        TRELLO_API_SECRET=sandbox.api_secret,
        FIGMA_TOKEN="sandbox-figma-token",
    )
    return variables


def run(
    sandbox: Sandbox, tree: Tree, args: tuple[str, ...], *, importtime: bool = False
) -> tuple[float, float, int, int, str]:
    """One fresh process: wall seconds, CPU seconds, requests, peak RSS (KiB), stderr."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "syncd.cli"]
    sandbox.reset_counts()
    measured = Measured(  # through a launcher: its own wall, CPU and peak RSS, not this bench's
        [*command, *args],
        cwd=tree.config.parent,
        env=environment(sandbox, tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert measured.process.stderr is not None
    stderr = measured.process.stderr.read()  # the only pipe: read to the end, then reap
    measured.process.stderr.close()
    usage = measured.wait()
    if usage.returncode:
        raise SystemExit(f"{tree.label}: syncd {' '.join(args)} failed:\n{stderr[-2000:]}")
    return usage.wall_seconds, usage.cpu_seconds, len(sandbox.requests), usage.peak_rss_kb, stderr


def import_times(stderr: str) -> dict[str, int]:
    """Module → self import time (µs), from ``-X importtime`` output."""
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        times[name.strip()] = int(self_us)
    return times


def fastest(samples: list[dict[str, int]]) -> dict[str, int]:
    """Per module, the fastest of the runs (the machine's load only ever adds time)."""
    best: dict[str, int] = {}
    for sample_ in samples:
        for name, value in sample_.items():
            best[name] = min(best.get(name, value), value)
    return best


def third_party_modules(stderr: str) -> list[str]:
    """The modules a run imported from outside the standard library and syncd, in the order
    ``-X importtime`` printed them (each after its own imports)."""
    ours = {"syncd", "state", "adapters"}
    return [
        name
        for name in import_times(stderr)  # in the printed order
        if (top := name.split(".")[0]) not in ours and top not in sys.stdlib_module_names
    ]


def floor_script(modules: list[str]) -> str:
    """A program importing `modules` only, as `syncd.cli` imports: collector off, Rich hidden
    while structlog is imported, one collection then a freeze at exit (a module that fails
    alone, e.g. an optional one probed by its package, is skipped as its importer skipped it)."""
    return (
        "import atexit, gc, importlib, sys\n"
        "gc.disable()\n"
        "atexit.register(lambda: (gc.collect(), gc.freeze()))\n"
        "sys.modules['rich'] = None\n"
        "import structlog\n"
        "del sys.modules['rich']\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        pass\n"
    )


def run_floor(script: Path) -> tuple[float, float]:
    """One fresh process running the floor script: wall and CPU seconds."""
    measured = Measured(
        [sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    usage = measured.wait()
    if usage.returncode:
        raise SystemExit(f"the floor script failed ({script})")
    return usage.wall_seconds, usage.cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--importtime", type=int, default=3, help="-X importtime runs (0: none)")
    parser.add_argument("--source", type=Path, action="append", help="a syncd source tree")
    parser.add_argument("--top", type=int, default=12, help="packages listed per tree")
    options = parser.parse_args()
    sources = [path.resolve() for path in options.source or [REPO]]

    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(world=sample(), figma=build_sample_figma(), rate_limit_per_10s=None) as sandbox,
    ):
        trees = [
            Tree(
                label=f"{source.name}" if len(sources) > 1 else "syncd",
                source=source,
                config=write_config(sandbox, Path(tmp) / f"tree{index}"),
            )
            for index, source in enumerate(sources)
        ]
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
            f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)"
        )
        for tree in trees:
            wall, cpu, requests, _, _ = run(sandbox, tree, ("sync",))
            print(
                f"{tree.label:<12} first sync (new store, Alembic creates the schema): "
                f"{wall:.2f} s wall, {cpu:.2f} s CPU, {requests} requests"
            )
        *_, stderr = run(sandbox, trees[0], COMMANDS["sync"], importtime=True)
        floor = Path(tmp) / "floor.py"
        modules = third_party_modules(stderr)
        floor.write_text(floor_script(modules), encoding="utf-8")
        floor_walls: list[float] = []
        floor_cpus: list[float] = []
        for _ in range(options.runs):
            wall, cpu = run_floor(floor)
            floor_walls.append(wall)
            floor_cpus.append(cpu)
            for name, args in COMMANDS.items():
                for tree in trees:
                    wall, cpu, requests, peak, _ = run(sandbox, tree, args)
                    tree.walls.setdefault(name, []).append(wall)
                    tree.cpus.setdefault(name, []).append(cpu)
                    tree.requests.setdefault(name, []).append(requests)
                    tree.peak_kib[name] = max(tree.peak_kib.get(name, 0), peak)
        samples: dict[tuple[str, str], list[dict[str, int]]] = {}
        for _ in range(options.importtime):
            for name, args in COMMANDS.items():
                for tree in trees:
                    *_, stderr = run(sandbox, tree, args, importtime=True)
                    samples.setdefault((tree.label, name), []).append(import_times(stderr))
        for tree in trees:
            for name in COMMANDS:
                if (tree.label, name) in samples:
                    tree.imports[name] = fastest(samples[tree.label, name])

    print(
        f"\n{options.runs} runs per command and tree (fresh processes, store at head)"
        f"\n{'tree':<12} {'command':<8} {'median':>8} {'min':>8} {'CPU med':>8} "
        f"{'requests':>8} {'peak RSS':>9} {'imports':>8} {'share':>6}"
    )
    for tree in trees:
        for name in COMMANDS:
            median = statistics.median(tree.walls[name])
            imported = sum(tree.imports.get(name, {}).values()) / 1e6
            share = f"{imported / median:6.0%}" if tree.imports else "     -"
            print(
                f"{tree.label:<12} {name:<8} {median:7.3f}s {min(tree.walls[name]):7.3f}s "
                f"{statistics.median(tree.cpus[name]):7.3f}s "
                f"{statistics.median(tree.requests[name]):>8.0f} "
                f"{tree.peak_kib[name] / 1024:7.0f}MB "
                + (f"{imported:7.3f}s {share}" if tree.imports else "       -      -")
            )
    floor_median = statistics.median(floor_walls)
    print(
        f"{'floor':<12} {'imports':<8} {floor_median:7.3f}s {min(floor_walls):7.3f}s "
        f"{statistics.median(floor_cpus):7.3f}s        -         -  ({len(modules)} third-party "
        f"modules of `{trees[0].label} sync`, nothing of syncd)"
    )
    for tree in trees:
        sync_median = statistics.median(tree.walls["sync"])
        print(
            f"{tree.label:<12} sync − floor: {sync_median - floor_median:.3f} s of "
            f"{sync_median:.3f} s is syncd's own (its modules, its tables, the command itself)"
        )
    for tree in trees:
        for name, times in tree.imports.items():
            packages: Counter[str] = Counter()
            for module, value in times.items():
                packages[module.split(".")[0]] += value
            print(
                f"\n{tree.label} {name}: {len(times)} modules imported in "
                f"{sum(times.values()) / 1e6:.3f} s (min per module over {options.importtime} runs)"
            )
            print(
                "  "
                + ", ".join(
                    f"{package} {value / 1000:.0f} ms"
                    for package, value in packages.most_common(options.top)
                )
            )
            absent = [
                package
                for package in ("fastapi", "uvicorn", "starlette", "alembic", "jinja2", "mako")
                if package not in packages
            ]
            print(f"  not imported: {', '.join(absent) or '-'}")


if __name__ == "__main__":
    main()
