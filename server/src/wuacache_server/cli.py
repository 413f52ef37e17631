"""The ``wuacache-server`` command.

    wuacache-server init          # folders, a commented server.toml, the database, a first admin token
    wuacache-server serve         # the API and the files hosts download
    wuacache-server sync-cab      # refresh the catalog from Microsoft now
    wuacache-server fetch         # download the files hosts need now (--update ID: an update's too)
    wuacache-server cleanup       # delete the files no host needs any more
    wuacache-server status
    wuacache-server token create ansible --role controller
    wuacache-server package add windows10.0-kb5034441-x64.msu --kb KB5034441

Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from wuacache_server.config import CONFIG_FILE_NAME, ConfigError, Duration, Settings, config_template, load_settings
from wuacache_server.db.engine import (
    MigrationError,
    current_revision,
    head_revision,
    is_contention,
    make_engine,
    migrate,
    session_factory,
)
from wuacache_server.db.models import ApiToken, Base, CabSyncRun, Host, PayloadFile, TokenRole, Update, utcnow
from wuacache_server.security import create_token, find_token, list_tokens, revoke_token, rotate_token
from wuacache_server.services import audit
from wuacache_server.services.cab import CabSyncBusy, run_cab_sync
from wuacache_server.services.cleanup import CleanupBusy, run_cleanup
from wuacache_server.services.fetching import FetchService, FetchServiceBusy, UpdatesNotDownloadable, summarize
from wuacache_server.services.packages import (
    InvalidPackage,
    PackageConflict,
    PackageInfo,
    PackageTooLarge,
    PackageUpload,
    find_package,
    list_packages,
    package_url,
    remove_package,
    save_package,
)

PROG = "wuacache-server"


class CommandError(Exception):
    """A command that cannot be carried out; the message says why."""


@contextmanager
def _database(settings: Settings, *, migrated: bool = True) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    try:
        if migrated:
            _require_current_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _require_current_schema(engine: Engine) -> None:
    revision, head = current_revision(engine), head_revision()
    if revision != head:
        found = f"at revision {revision}" if revision else "not migrated"
        raise CommandError(f"the database is {found}; this server needs {head}: run `{PROG} migrate`")


def _display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    settings.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    settings.wua_dir.mkdir(parents=True, exist_ok=True)
    settings.packages_dir.mkdir(exist_ok=True)
    if settings.config is None:
        config_file = settings.data_dir / CONFIG_FILE_NAME
        # It may come to hold a database password, hence the mode; and it is
        # created exclusively, never overwriting a file that appeared meanwhile.
        config_file.touch(mode=0o600, exist_ok=False)
        config_file.write_text(config_template(settings), encoding="utf-8")
        config_note = f"{config_file} (written, every setting commented out)"
    else:
        config_note = f"{settings.config} (kept)"
    migrate(settings.database_url)
    with _database(settings) as engine, session_factory(engine)() as session:
        has_admin = session.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(ApiToken.role == TokenRole.ADMIN, ApiToken.revoked_at.is_(None))
        )
        token = None if has_admin else create_token(session, "admin", TokenRole.ADMIN)
        if token:
            audit.record(session, audit.CLI, "token.create", "the first admin token", role="admin")
        session.commit()
    print(f"data folder:  {settings.data_dir}")
    print(f"settings:     {config_note}")
    print(f"database:     {_display_url(settings.database_url)} (schema {head_revision()})")
    if token:
        print(f"admin token:  {token}")
        print("              (shown only this once: keep it somewhere safe)")
    else:
        print(f"admin token:  one exists already; `{PROG} token create NAME --role admin` makes another")
    print(f"next:         {PROG} serve   (then {settings.base_url}/docs)")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    migrate(settings.database_url)
    print(f"database {_display_url(settings.database_url)} at schema revision {head_revision()}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    # The web stack is loaded here only: the other commands start faster without it.
    import uvicorn

    from wuacache_server.api.app import create_app

    engine = make_engine(settings.database_url)
    try:
        _require_current_schema(engine)
    finally:
        engine.dispose()
    uvicorn.run(
        create_app(settings, background_jobs=True),
        host=settings.listen_host,
        port=settings.listen_port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        log_config=None,  # uvicorn's loggers go through ours, to stderr
        server_header=False,
    )
    return 0


def cmd_sync_cab(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the catalog is current (new or unchanged), 1 when the run failed."""
    with _database(settings) as engine:
        try:
            outcome = run_cab_sync(settings, session_factory(engine), force=args.force)
        except CabSyncBusy as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        with session_factory(engine)() as session:
            audit.record_committed(
                session, audit.CLI, "cab_sync.run", "cab sync", forced=args.force, outcome=outcome.summary()
            )
    print(outcome.summary())
    return 0 if outcome.succeeded else 1


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the database answers at the current schema, 1 when it needs a migration."""
    head = head_revision()
    lines = [
        ("settings", str(settings.config or "(no file: environment and defaults)")),
        ("data folder", str(settings.data_dir)),
        ("repository", str(settings.repository_dir)),
        ("database", _display_url(settings.database_url)),
    ]
    with _database(settings, migrated=False) as engine:
        revision = current_revision(engine)  # raises when the database does not answer
        if revision != head:
            lines.append(("schema", f"{revision or 'not migrated'}; this server needs {head}: run `{PROG} migrate`"))
        else:
            lines.append(("schema", f"{revision} (current)"))
            with session_factory(engine, deferred=True)() as session:
                lines.extend(_inventory(session))
    width = max(len(label) for label, _ in lines) + 2
    for label, value in lines:
        print(f"{label + ':':<{width}}{value}")
    return 0 if revision == head else 1


def _inventory(session: Session) -> list[tuple[str, str]]:
    def count(model: type[Base], *where: ColumnElement[bool]) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    last_sync = session.scalars(select(CabSyncRun).order_by(CabSyncRun.started_at.desc()).limit(1)).first()
    return [
        ("hosts", str(count(Host))),
        ("updates", str(count(Update))),
        ("files", f"{count(PayloadFile, PayloadFile.stored_at.is_not(None))} stored of {count(PayloadFile)}"),
        ("last cab sync", _describe_sync(last_sync)),
    ]


def _describe_sync(run: CabSyncRun | None) -> str:
    if run is None:
        return "never"
    reason = f" ({run.reason})" if run.reason else ""
    error = f": {run.error}" if run.error else ""
    return f"{run.status}{reason}, started {_timestamp(run.started_at)}{error}"


def _timestamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


_DURATION = TypeAdapter(Duration)


def _duration(text: str) -> timedelta:
    """A duration argument: 90s, 30m, 12h, 7d."""
    try:
        duration = _DURATION.validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 30m, 12h, 7d)") from None
    if duration < timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return duration


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine, session_factory(engine)() as session:
        try:
            role = TokenRole(args.role)
            lifetime = args.expires
            if lifetime is None and role is TokenRole.HOST:
                lifetime = settings.host_token_lifetime
            expires_at = utcnow() + lifetime if lifetime is not None else None
            token = create_token(session, args.name, role, args.host_name, expires_at=expires_at)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        record = find_token(session, token)
        assert record is not None  # created just now
        _audit_token(session, "token.create", record)
        session.commit()
    # Alone on stdout, so that scripts can capture it.
    print(token)
    print("the token is shown only this once: keep it somewhere safe", file=sys.stderr)
    return 0


def _audit_token(session: Session, action: str, token: ApiToken, **details: object) -> None:
    listed = {"id": token.id, "role": str(token.role), "host_name": token.host_name}
    expires = {"expires_at": token.expires_at.isoformat() if token.expires_at else None}
    audit.record(session, audit.CLI, action, f"token {token.id} ({token.name})", **listed, **expires, **details)


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine, session_factory(engine, deferred=True)() as session:
        rows = [
            (
                str(token.id),
                token.name,
                str(token.role),
                token.host_name or "-",
                _timestamp(token.created_at),
                _timestamp(token.last_used_at),
                _timestamp(token.revoked_at),
                _timestamp(token.expires_at),
            )
            for token in list_tokens(session)
        ]
    _print_table(("ID", "NAME", "ROLE", "HOST", "CREATED", "LAST USED", "REVOKED", "EXPIRES"), rows)
    return 0


def cmd_token_rotate(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine, session_factory(engine)() as session:
        old = session.get(ApiToken, args.id)
        if old is None:
            raise CommandError(f"no token with id {args.id}")
        renewed = utcnow() + settings.host_token_lifetime if old.role is TokenRole.HOST else None
        try:
            new, token = rotate_token(session, args.id, args.grace, expires_at=renewed)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        _audit_token(session, "token.rotate", new, replaces=args.id, grace=args.grace.total_seconds())
        session.commit()
        print(token)
        print(
            f"the token is shown only this once: keep it somewhere safe; "
            f"the old one works until {_timestamp(old.expires_at)}",
            file=sys.stderr,
        )
    return 0


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine, session_factory(engine)() as session:
        token = revoke_token(session, args.id)
        if token is None:
            raise CommandError(f"no token with id {args.id}")
        _audit_token(session, "token.revoke", token)
        session.commit()
        print(f"token {token.id} {token.name!r} revoked")
    return 0


def cmd_package_add(settings: Settings, args: argparse.Namespace) -> int:
    source: Path = args.file
    with _database(settings) as engine, session_factory(engine)() as session:
        try:
            info = PackageInfo.checked(args.name or source.name, args.kb, args.description)
            with (
                source.open("rb") as stream,
                PackageUpload(settings.packages_dir, settings.max_package_bytes) as upload,
            ):
                upload.copy_from(stream)
                saved = save_package(session, upload, info)
        except (InvalidPackage, PackageTooLarge, PackageConflict) as exc:
            raise CommandError(str(exc)) from None
        action = "package.replace" if saved.replaced else "package.add"
        audit.record_committed(session, audit.CLI, action, saved.package.name, size=saved.package.size, kb=info.kb)
    package = saved.package
    action = "replaced" if saved.replaced else "added"
    print(f"package {package.name} {action}: {package.size} bytes, SHA-256 {package.sha256}")
    print(f"hosts download it from {package_url(settings.base_url, package.name)}")
    return 0


def cmd_package_list(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine, session_factory(engine, deferred=True)() as session:
        rows = [
            (
                package.name,
                str(package.kind),
                str(package.size),
                f"KB{package.kb}" if package.kb else "-",
                _timestamp(package.updated_at),
                package.sha256,
                package.description,
            )
            for package in list_packages(session)
        ]
    _print_table(("NAME", "KIND", "SIZE", "KB", "UPLOADED", "SHA-256", "DESCRIPTION"), rows)
    return 0


def cmd_package_remove(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine, session_factory(engine)() as session:
        package = find_package(session, args.name)
        if package is None:
            raise CommandError(f"no package named {args.name!r}")
        remove_package(session, settings.packages_dir, package)
        audit.record_committed(session, audit.CLI, "package.remove", args.name)
    print(f"package {args.name} removed")
    return 0


def cmd_fetch(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when every download succeeded, 1 when one failed."""
    with _database(settings) as engine:
        sessions = session_factory(engine)
        try:
            with FetchService(settings, sessions) as service:
                task_ids = service.run_once(args.update_ids or ())
                service.wait(task_ids)
        except (FetchServiceBusy, UpdatesNotDownloadable) as exc:
            raise CommandError(str(exc)) from None
        with sessions() as session:
            if args.update_ids:
                audit.record_committed(session, audit.CLI, "download.force", "updates", update_ids=args.update_ids)
            summary = summarize(session, task_ids)
    print(f"{summary.completed} file(s) on the server ({summary.bytes_done} bytes), {len(summary.failed)} failed")
    for file_name, error in summary.failed:
        print(f"failed: {file_name}: {error}")
    return 1 if summary.failed else 0


def cmd_cleanup(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as engine:
        try:
            result = run_cleanup(settings, session_factory(engine), utcnow())
        except CleanupBusy as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        if result.run_id is not None:
            with session_factory(engine)() as session:
                audit.record_committed(
                    session, audit.CLI, "cleanup.run", f"cleanup run {result.run_id}", message=result.message
                )
    print(result.message)
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 10_000:
        raise CommandError("--limit must be from 1 to 10000")
    with _database(settings) as engine, session_factory(engine)() as session:
        _, events = audit.list_events(session, action=args.action, limit=args.limit)
        rows = [
            (
                _timestamp(event.at),
                event.actor,
                event.action,
                event.target,
                json.dumps(event.details, sort_keys=True, separators=(",", ":")),
            )
            for event in events
        ]
    _print_table(("TIME", "ACTOR", "ACTION", "TARGET", "DETAILS"), rows)
    return 0


Handler = Callable[[Settings, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Offline Windows Update catalog and need-driven update cache for wuacache.wua.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wuacache-server')}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"TOML settings file (default: $WUACACHE_CONFIG, else <data_dir>/{CONFIG_FILE_NAME} when present)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_command(
        commands,
        "init",
        cmd_init,
        "create the data folders, a commented server.toml, the database and a first admin token",
    )
    _add_command(commands, "migrate", cmd_migrate, "bring the database to the current schema")
    _add_command(commands, "serve", cmd_serve, "run the HTTP(S) server")
    sync_cab = _add_command(
        commands, "sync-cab", cmd_sync_cab, "download, verify and publish a new wsusscn2.cab, and import its catalog"
    )
    sync_cab.add_argument("--force", action="store_true", help="download the cab even if upstream reports no change")
    _add_command(commands, "status", cmd_status, "show the settings in use and the state of the database")
    fetch = _add_command(
        commands, "fetch", cmd_fetch, "download the files hosts need (and forced updates' files), then exit"
    )
    fetch.add_argument(
        "--update",
        dest="update_ids",
        action="append",
        metavar="UPDATE_ID",
        help="also download the files of this update, needed or not (repeatable)",
    )
    _add_command(commands, "cleanup", cmd_cleanup, "delete the stored update files that no host needs any more")

    audit_command = _add_command(commands, "audit", cmd_audit, "show the audit trail, newest first")
    audit_command.add_argument("--action", help="only events of this action, e.g. ruleset.replace")
    audit_command.add_argument("--limit", type=int, default=50, help="how many events (default 50)")

    token = commands.add_parser("token", help="manage API tokens", description="Manage API tokens.")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = _add_command(token_commands, "create", cmd_token_create, "create a token and print its secret, once")
    create.add_argument("name", help="what the token is for, e.g. ansible")
    create.add_argument("--role", required=True, choices=[role.value for role in TokenRole])
    create.add_argument("--host", dest="host_name", metavar="HOST", help="the host a host token acts for")
    create.add_argument(
        "--expires",
        type=_duration,
        metavar="DURATION",
        help="expire after this long, e.g. 90d or 12h (host tokens: host_token_lifetime by default; " "others: never)",
    )
    _add_command(token_commands, "list", cmd_token_list, "list the tokens (never their secrets)")
    revoke = _add_command(token_commands, "revoke", cmd_token_revoke, "revoke a token for good")
    revoke.add_argument("id", type=int, help="the token's ID, from `token list`")
    rotate = _add_command(
        token_commands, "rotate", cmd_token_rotate, "replace a token with a new secret and print it, once"
    )
    rotate.add_argument("id", type=int, help="the token's ID, from `token list`")
    rotate.add_argument(
        "--grace",
        type=_duration,
        default=timedelta(0),
        metavar="DURATION",
        help="how long the old secret keeps working, e.g. 1h or 7d (default: it stops now)",
    )

    package = commands.add_parser(
        "package",
        help="manage the packages (.msu, .cab) hosts may install",
        description="Manage the standalone update packages (.msu, .cab) hosts may install.",
    )
    package_commands = package.add_subparsers(dest="package_command", required=True, metavar="ACTION")
    add = _add_command(package_commands, "add", cmd_package_add, "upload a package, or replace the one of its name")
    add.add_argument("file", type=Path, metavar="FILE", help="the .msu or .cab file")
    add.add_argument("--name", help="the name hosts download it under (default: the file's name)")
    add.add_argument("--kb", metavar="KB", help="the KB it installs, e.g. KB5034441")
    add.add_argument("--description", default="", metavar="TEXT", help="what it is, for admins")
    _add_command(package_commands, "list", cmd_package_list, "list the packages")
    remove = _add_command(package_commands, "remove", cmd_package_remove, "delete a package and its file")
    remove.add_argument("name", help="the package's name, from `package list`")
    return parser


def _add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler, summary: str
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    parser.set_defaults(handler=handler)
    return parser


def _describe_error(exc: Exception) -> str:
    if is_contention(exc):
        return "the database stayed busy with other writers too long; nothing changed, try again"
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip() or type(exc.orig).__name__
        return f"database: {detail.splitlines()[0]}"
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "serve" else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # it describes every connection it inspects
    handler: Handler = args.handler
    try:
        return handler(load_settings(args.config), args)
    except (CommandError, ConfigError, MigrationError, SQLAlchemyError, OSError) as exc:
        print(f"{PROG}: error: {_describe_error(exc)}", file=sys.stderr)
        return 2
