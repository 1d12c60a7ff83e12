"""The `syncd` command line (Typer): demo, sync, run, report, digest, writeback, webhooks, check,
db.

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage, 3 flags open with
``--fail-on-flags``. Errors are one line on stderr (a traceback only with ``--debug``); logs go
to stderr and stdout carries only the command's own output.

Each command imports what it uses, inside its body: `syncd sync` never imports the web server,
the report's templates or Alembic (a store at head is checked with plain SQL), and `syncd
--help` imports neither the store nor the clients (`tests/test_cli.py` checks both).

A short command run as the `syncd` process (main() without argv) spends no collection on what it
imports: the collector is held off while it imports (`_root`), what was imported is frozen
(`Options.imported`), and at exit the garbage is collected once before the rest is frozen
(`_collect_then_freeze`), instead of the interpreter's full collections at shutdown.
"""

from __future__ import annotations

import atexit
import gc
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from syncd.errors import BadUsage, SyncFailed
from syncd.logs import configure_logging

if TYPE_CHECKING:
    from syncd.config import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_FLAGS = 0, 1, 2, 3
# Start-up allocates a few hundred thousand objects that live as long as the process (modules,
# classes, SQLAlchemy tables, pydantic validators). At the collector's default pace (a young
# collection every 700 allocations) a short command spends about a tenth of its time looking for
# cycles among them (bench/bench_cold_start.py), so a short command runs with a larger young
# generation. `syncd run` keeps the interpreter's pace: the daemon measured slower on its first
# webhook when its modules had been imported under the larger one (tests/daemon/test_e2e.py).
COMMAND_GC_THRESHOLD = (10_000, 10, 10)
LONG_LIVED_COMMANDS = frozenset({"run"})


def _collect_then_freeze() -> None:
    """At the exit of a `syncd` process running a short command: collect the garbage once (every
    finaliser runs as before, e.g. SQLite's checkpoint when the store's last connection closes),
    then freeze what is left alive (`gc.freeze`). The interpreter's own shutdown runs several
    full collections over every object still alive (modules, classes, SQLAlchemy tables): a
    fifth of a cold `syncd sync` (bench/bench_cold_start.py). A frozen object is still freed
    when its last reference goes; what stays in a cycle is left to the operating system, as the
    process ends."""
    gc.collect()
    gc.freeze()


def _click_class(name: str) -> type[Exception]:
    """Click's exception class as Typer uses it (recent Typer vendors its own Click)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


UsageError = _click_class("UsageError")
ClickException = _click_class("ClickException")

app = typer.Typer(
    name="syncd",
    help="Mirror the consortium's Trello boards and Figma files; flag governance drift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
webhooks_app = typer.Typer(help="Manage the Trello webhooks of the configured boards.")
db_app = typer.Typer(help="Database maintenance.")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(db_app, name="db")


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    html = "html"


class Options:
    def __init__(self, config: Path | None, debug: bool, *, process: bool = False) -> None:
        self.config = config
        self.debug = debug
        self.process = process  # the `syncd` process itself, not Python code calling main(argv)
        self._settings: Settings | None = None

    def imported(self) -> None:
        """A short command has imported its modules: in a `syncd` process, freeze them
        (`gc.freeze`), so that no later collection, the one at exit included, traverses the
        objects they made (~100,000 for `syncd sync`), and resume collecting (`_root` held
        the collector off while they were imported: they live as long as the process). Code
        calling main(argv) keeps its collector as it was."""
        if self.process:
            gc.freeze()
            gc.enable()

    @property
    def settings(self) -> Settings:
        if self.process:
            gc.enable()  # at the latest when a command reads its settings (`_root`)
        if self._settings is None:
            from syncd.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings


def _options(ctx: typer.Context) -> Options:
    return ctx.ensure_object(Options)  # type: ignore[no-any-return]


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file (or SYNCD_CONFIG).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Debug logs and tracebacks.")] = False,
) -> None:
    configure_logging(debug=debug)
    process = ctx.obj is _PROCESS  # main() without argv: `syncd` itself
    ctx.obj = Options(config, debug, process=process)
    if ctx.invoked_subcommand not in LONG_LIVED_COMMANDS:
        gc.set_threshold(*COMMAND_GC_THRESHOLD)  # main() gives the caller its own pace back
        if process:
            gc.disable()  # until the command's modules are imported (`Options.imported`)
            atexit.register(_collect_then_freeze)


@app.command()
def demo(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="SQLite file to mirror into.")] = Path("syncd-demo.db"),
    fmt: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.table,
    lang: Annotated[str, typer.Option(help="Report language: fr or en.")] = "fr",
) -> None:
    """Start the bundled sandbox, mirror it into a local SQLite file, print the drift report."""
    from syncd.demo import run_demo

    _options(ctx).imported()
    run_demo(db, fmt.value, lang)


@app.command()
def sync(
    ctx: typer.Context,
    full: Annotated[
        bool, typer.Option("--full", help="Take a full snapshot of every board.")
    ] = False,
) -> None:
    """One sync pass of every configured board and Figma file, then exit."""
    from syncd.runtime import build_runtime
    from syncd.sync_pass import sync_pass

    options = _options(ctx)
    options.imported()
    runtime = build_runtime(options.settings, progress=_progress())
    result = sync_pass(runtime, full=full)
    for report in result.boards:
        typer.echo(
            f"{report.board}: {report.mode}, {report.requests} requests, {report.cards} cards, "
            f"{report.changes} changes, {report.seconds:.2f} s"
            + (f" — {report.error}" if report.error else "")
        )
    for file_report in result.figma:
        typer.echo(f"figma {file_report.key}: {file_report.mode}, {file_report.requests} requests")
    if result.writeback is not None:
        typer.echo(result.writeback.line())
    if result.failed:
        raise SyncFailed("; ".join(result.failed))


@app.command()
def run(
    ctx: typer.Context,
    register_webhooks: Annotated[
        bool, typer.Option("--register-webhooks", help="Register the Trello webhooks at start.")
    ] = False,
) -> None:
    """The daemon: scheduled syncs, webhook receiver, dashboard. Stops on SIGTERM/SIGINT."""
    from syncd.daemon.run import run_daemon

    raise typer.Exit(run_daemon(_options(ctx).settings, register_webhooks=register_webhooks))


@app.command()
def report(
    ctx: typer.Context,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table (default on a TTY) or json, …")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Also list what changed since this ISO date.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of stdout.")
    ] = None,
    fail_on_flags: Annotated[
        bool, typer.Option("--fail-on-flags", help="Exit 3 when any flag is open.")
    ] = False,
    lang: Annotated[str, typer.Option(help="Report language: fr or en.")] = "fr",
    at: Annotated[
        str | None, typer.Option(help="The report as it stood at this ISO date (history).")
    ] = None,
) -> None:
    """The drift report, from the store alone."""
    if lang not in ("fr", "en"):
        raise typer.BadParameter("must be fr or en", param_hint="--lang")
    since_at = _user_date(since, "--since") if since else None
    at_moment = _user_date(at, "--at") if at else None
    if since_at and at_moment and since_at > at_moment:
        raise BadUsage("--since must not be after --at")
    from state.store import Store
    from syncd.report.build import build_report
    from syncd.report.render import render

    options = _options(ctx)
    options.imported()
    settings = options.settings
    store = Store(settings.store.url)
    chosen = fmt.value if fmt else ("table" if sys.stdout.isatty() and not output else "json")
    data = build_report(
        store, settings, now=datetime.now(UTC), since=since_at, lang=lang, at=at_moment
    )
    text = render(data, chosen, lang=lang, color=chosen == "table" and sys.stdout.isatty())
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if fail_on_flags and any(flag["resolved_at"] is None for flag in data["flags"]):
        raise typer.Exit(EXIT_FLAGS)


def _user_date(value: str, option: str) -> datetime:
    """An option's ISO date (`state.timestamps.parse_user_date`); a usage error when bad."""
    from state.timestamps import BadDate, parse_user_date

    try:
        return parse_user_date(value)
    except BadDate as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command()
def digest(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Cover the time since this ISO date (default: 7 days).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digest (Markdown); send nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send again though this period's digest was sent.")
    ] = False,
) -> None:
    """The weekly digest: sent to every SYNCD_DIGEST_URLS destination, once per period."""
    settings = _options(ctx).settings
    since_at = _user_date(since, "--since") if since else None
    from state.store import Store
    from syncd.config import ConfigError
    from syncd.digest.deliver import parse_destinations
    from syncd.digest.service import build_digest, send_digest

    now = datetime.now(UTC)
    if since_at is not None and since_at > now:
        raise BadUsage("--since must not be in the future")
    store = Store(settings.store.url)
    if dry_run:
        sys.stdout.write(build_digest(store, settings, now, since_at).markdown)
        return
    secret = settings.secrets.digest_urls
    destinations = parse_destinations(secret.get_secret_value() if secret else None)
    if not destinations:
        raise ConfigError("SYNCD_DIGEST_URLS: missing from the environment (or use --dry-run)")
    outcome = send_digest(store, settings, destinations, now=now, since=since_at, force=force)
    if outcome.status == "failed":
        raise SyncFailed(outcome.line)
    typer.echo(outcome.line)


@app.command()
def writeback(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the comments write-back would post now; post none."),
    ] = False,
) -> None:
    """Write-back: post the comments owed on the dashboard cards (--dry-run: print them)."""
    from syncd.writeback.service import preview, render_preview

    settings = _options(ctx).settings
    if dry_run:
        from state.store import Store

        store = Store(settings.store.url)
        rows = preview(store, settings, datetime.now(UTC))
        sys.stdout.write(render_preview(rows, enabled=settings.writeback.enabled))
        return
    if not settings.writeback.enabled:
        from syncd.config import ConfigError

        raise ConfigError("writeback.enabled: false (turn it on to post, or use --dry-run)")
    from syncd.runtime import build_runtime

    runtime = build_runtime(settings)
    assert runtime.writeback is not None
    typer.echo(runtime.writeback.run().line())


@webhooks_app.command("register")
def webhooks_register(ctx: typer.Context) -> None:
    """Make exactly one webhook per configured board (idempotent)."""
    from syncd.runtime import build_runtime
    from syncd.trello.admin import register_webhooks

    for line in register_webhooks(build_runtime(_options(ctx).settings)):
        typer.echo(line)


@webhooks_app.command("list")
def webhooks_list(ctx: typer.Context) -> None:
    """Show our webhooks and their state."""
    from syncd.runtime import build_runtime
    from syncd.trello.admin import list_webhooks

    for line in list_webhooks(build_runtime(_options(ctx).settings)):
        typer.echo(line)


@webhooks_app.command("delete")
def webhooks_delete(ctx: typer.Context) -> None:
    """Delete our webhooks (only those pointing at our public_url)."""
    from syncd.runtime import build_runtime
    from syncd.trello.admin import delete_webhooks

    for line in delete_webhooks(build_runtime(_options(ctx).settings)):
        typer.echo(line)


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate the config and try each remote once."""
    from syncd.checks import run_checks

    failures = 0
    for ok, line in run_checks(_options(ctx).settings):
        typer.echo(("ok    " if ok else "FAIL  ") + line)
        failures += 0 if ok else 1
    if failures:
        raise SyncFailed(f"{failures} check(s) failed")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database migrations."""
    from state.store import Store

    settings = _options(ctx).settings
    store = Store(settings.store.url, migrate=False)
    store.upgrade()
    typer.echo(f"store {store.safe_url} is at the latest schema")


def _progress() -> object | None:
    if not sys.stderr.isatty():
        return None
    import structlog  # imported by syncd.logs, without Rich for JSON lines

    progress_log = structlog.get_logger("syncd.progress")
    return lambda message: progress_log.info(message)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map failures to one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    thresholds = gc.get_threshold()  # a short command raises them (`_root`)
    try:
        return _run(args, debug, process=argv is None)
    finally:
        gc.set_threshold(*thresholds)


_PROCESS = object()  # main()'s mark, for `_root`, that it runs as the `syncd` process


def _run(args: list[str], debug: bool, *, process: bool) -> int:
    try:
        result = app(
            args=args, prog_name="syncd", standalone_mode=False, obj=_PROCESS if process else None
        )
        return int(result) if isinstance(result, int) else EXIT_OK
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except typer.Abort:
        return EXIT_FAILURE
    except Exception as exc:
        code = _exit_code(exc)
        if debug or code is None:
            raise
        if isinstance(exc, UsageError):
            exc.show()  # type: ignore[attr-defined]
        elif _is_config_error(exc):
            _error(f"config error: {exc}")
        else:
            _error(str(exc))
        return code


def _exit_code(exc: Exception) -> int | None:
    """The exit code of an error syncd reports in one line; None for anything else (a bug).

    The store's, the remote APIs' and the config's error classes are looked up only now: a
    command that failed imports nothing more than it used to fail (`_loaded_class`)."""
    if isinstance(exc, UsageError | BadUsage) or _is_config_error(exc):
        return EXIT_USAGE
    failures = (SyncFailed, OSError, ClickException)
    if isinstance(exc, failures) or any(
        isinstance(exc, cls)
        for cls in (
            _loaded_class("adapters.transport", "ApiError"),
            _loaded_class("state.store", "StoreError"),
        )
        if cls is not None
    ):
        return EXIT_FAILURE
    return None


def _is_config_error(exc: Exception) -> bool:
    cls = _loaded_class("syncd.config", "ConfigError")
    return cls is not None and isinstance(exc, cls)


def _loaded_class(module: str, name: str) -> type[Exception] | None:
    """`module.name` if that module is imported, else None: an exception of a class whose
    module was never imported cannot have been raised."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


def _error(message: str) -> None:
    sys.stderr.write(f"syncd: {' '.join(message.split())}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
