#!/usr/bin/env python3
"""Throughput, latency and footprint of host report ingestion, for a fleet.

    .venv/bin/python benchmarks/report-ingestion.py [--hosts 1000] [--updates 3000]
        [--database-url URL] [--api] [--concurrency K] [--cprofile N]

    scripts/with-postgres sh -c \\
        '.venv/bin/python benchmarks/report-ingestion.py --database-url "$WUACACHE_TEST_POSTGRES_URL"'

What it does: generates a signed lab catalog, imports it into a fresh
database, scans it once per OS profile with the lab's emulated Windows Update
Agent, derives a few variants of each scan (more or fewer updates installed,
a failed install here and there), then ingests one report per host for
``--hosts`` hosts, each variant under many host names. Reports go through
``services.reports.ingest_report`` and a commit, as the API does; with
``--api`` they go through the FastAPI app instead (a TestClient with a
controller token: JSON parsing, validation, authentication and the plan's
serialisation included). With ``--concurrency K`` they come from K threads at
once: SQLite takes one writer at a time, PostgreSQL locks rows.

``--database-url``: a SQLite URL names a file to create (default: one in a
temporary folder); a PostgreSQL URL names a database in which a schema of the
benchmark's own is created, used and dropped. A plain ``postgresql://`` URL,
as ``scripts/with-postgres`` exports it, is what the server takes (it picks
psycopg 3 itself). ``--cprofile N`` profiles ``ingest_report`` (without
``--api``, whose handlers run in other threads, and with one thread) and
prints the N functions with the largest cumulative time.

The figures:
  reports per second  reports ingested divided by the ingestion's wall time.
  time per report     from the report's arrival to its commit (to the API's
                      answer with --api), waits for locks included: mean, p95.
  failed              reports the database or the API refused (SQLite's
                      "database is locked" after its busy timeout, say); the
                      exit status is then 1.
  database size       after the import and after ingestion (SQLite: the file,
                      after a WAL checkpoint; PostgreSQL: the schema's tables,
                      indexes and TOAST), and the growth per host.
  peak RSS            of this process during ingestion (the catalog's
                      generation and the scans are not counted where Linux
                      lets the peak be reset), and the RSS before it.
  rows                in host_updates, host_update_files and host_reports.

Run by hand, never as part of the tests; the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import hashlib
import json
import math
import pstats
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from wuacache_lab.catalog import generate_catalog
from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.scanreport import ScanningHost
from wuacache_lab.windows.profiles import MIXED_ROTATION
from wuacache_server.api.app import create_app
from wuacache_server.api.report_schemas import HostReportIn
from wuacache_server.catalog.importer import import_catalog
from wuacache_server.config import Settings
from wuacache_server.db.engine import make_engine, migrate, session_factory
from wuacache_server.db.models import HostReport, HostUpdate, HostUpdateFile, RuleSet, TokenRole
from wuacache_server.security import create_token
from wuacache_server.services.reports import ReportError, ingest_report

BASE_URL = "http://wuacache.example.org:8088"
# What a typical production ring follows: security fixes after a week, the rest by rule set.
ASSIGNMENT = {"rule_sets": ["baseline"], "install_delay": "7d", "allowed_severities": ["Critical", "Important"]}
BASELINE = {
    "name": "baseline",
    "allowed_classifications": ["Security Updates", "Critical Updates", "Definition Updates"],
    "forbidden_kbs": ["5034441"],
}
INSTALL_FAILED = 4  # OperationResultCode orcFailed
ERROR_INSTALL_FAILURE = 0x80070643


# --- The fleet's reports -------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    cab: Path
    cab_sha256: str
    cab_date: datetime
    files_dir: Path
    trusted_ca: Path
    updates: int


def generate_lab(root: Path, updates: int, seed: int) -> Lab:
    ca = ensure_lab_ca(root / "ca")
    summary = generate_catalog(root / "catalog", updates=updates, seed=seed, ca=ca)
    return Lab(
        cab=summary.cab,
        cab_sha256=hashlib.sha256(summary.cab.read_bytes()).hexdigest(),
        cab_date=datetime.fromisoformat(summary.published),
        files_dir=summary.files_dir,
        trusted_ca=ca.ca_cert,
        updates=summary.updates,
    )


def scan(lab: Lab, state_dir: Path, profile: str) -> dict[str, Any]:
    """One real scan of the catalog by an emulated host of ``profile``."""
    host = ScanningHost(
        state_dir,
        f"scan-{profile}",
        profile,
        cab=lab.cab,
        cab_sha256=lab.cab_sha256,
        cab_date=lab.cab_date,
        trusted_ca=lab.trusted_ca,
        files_dir=lab.files_dir,
    )
    report: dict[str, Any] = host.report(ASSIGNMENT)
    return report


def variant(scanned: dict[str, Any], installed_share: float, rng: random.Random) -> dict[str, Any]:
    """The scan as another host of the same OS would send it: ``installed_share``
    of the updates installed (each with its history entry), and a failed
    install among the others now and then."""
    report = copy.deepcopy(scanned)
    history = []
    for update in report["updates"]:
        identity = {"update_id": update["update_id"], "revision_number": update["revision_number"]}
        installed_at = datetime.fromisoformat(update["last_deployment_change_time"]) + timedelta(
            days=rng.randint(1, 30)
        )
        if rng.random() < installed_share:
            update["is_installed"] = True
            history.append(
                {"operation": 1, "result_code": 2, "hresult": 0, "date": installed_at.isoformat(), **identity}
            )
        elif rng.random() < 0.02:
            failed = {"result_code": INSTALL_FAILED, "hresult": ERROR_INSTALL_FAILURE - 2**32}
            history.append({"operation": 1, **failed, "date": installed_at.isoformat(), **identity})
    report["history"] = sorted(history, key=lambda entry: entry["date"], reverse=True)  # WUA: newest first
    return report


def fleet_reports(lab: Lab, state_dir: Path, profiles: list[str], per_profile: int, seed: int) -> list[dict[str, Any]]:
    """``per_profile`` reports per OS profile, from one scan each: installed
    shares from none (a new machine) to most (a well-patched one)."""
    reports: list[dict[str, Any]] = []
    for profile in profiles:
        scanned = scan(lab, state_dir, profile)
        rng = random.Random(f"{seed}-{profile}")
        reports.extend(variant(scanned, share / per_profile, rng) for share in range(per_profile))
    return reports


def host_name(index: int) -> str:
    return f"host{index:06d}"


# --- The database --------------------------------------------------------------------


@contextmanager
def fresh_database(url: str | None, workdir: Path, keep: bool) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if url is None:
        url = f"sqlite:///{workdir / 'wuacache.db'}"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            raise SystemExit(f"{parsed.database} exists: give the name of a SQLite file to create")
        yield url
        return
    schema = f"report_ingestion_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            # Every connection of the benchmark works in its own schema only.
            yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        finally:
            if keep:
                print(f"kept schema {schema}")
            else:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def database_size(engine: Engine) -> int:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = Path(engine.url.database or "")
            return sum(file.stat().st_size for file in (path, Path(f"{path}-wal")) if file.exists())
        size = connection.scalar(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
            )
        )
        return int(size or 0)


def row_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (HostUpdate, HostUpdateFile, HostReport)
        }


# --- Ingestion -----------------------------------------------------------------------


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, started: float, failure: str | None) -> None:
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies.append(elapsed)
            if failure is not None:
                self.failures.append(failure)


def direct_ingester(
    sessions: sessionmaker[Session], reports: list[dict[str, Any]], results: Results
) -> Callable[[int], None]:
    """Host ``index``'s report, through the service and a commit, as the API handler does."""
    validated = [HostReportIn.model_validate(report) for report in reports]

    def ingest(index: int) -> None:
        name = host_name(index)
        report = validated[index % len(validated)].model_copy(update={"hostname": name})
        started = time.perf_counter()
        failure = None
        try:
            with sessions() as session:
                ingest_report(session, name, report, base_url=BASE_URL, now=datetime.now(UTC))
                session.commit()
        except (SQLAlchemyError, ReportError) as exc:  # a figure to report, not a reason to stop
            failure = f"{type(exc).__name__}: {exc}"
        results.record(started, failure)

    return ingest


def api_ingester(
    client: TestClient, token: str, reports: list[dict[str, Any]], results: Results
) -> Callable[[int], None]:
    """Host ``index``'s report, posted as JSON to the API with a controller token."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def ingest(index: int) -> None:
        name = host_name(index)
        body = json.dumps({**reports[index % len(reports)], "hostname": name}).encode()
        started = time.perf_counter()
        answer = client.post(f"/api/v1/hosts/{name}/reports", content=body, headers=headers)
        results.record(
            started, None if answer.status_code == 200 else f"HTTP {answer.status_code}: {answer.text[:200]}"
        )

    return ingest


def run(ingest: Callable[[int], None], hosts: int, concurrency: int, profile: cProfile.Profile | None) -> float:
    """Ingest every host's report; the wall time it took."""
    started = time.perf_counter()
    if concurrency == 1:
        if profile is not None:
            profile.enable()
        for index in range(hosts):
            ingest(index)
        if profile is not None:
            profile.disable()
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(ingest, range(hosts)))
    return time.perf_counter() - started


# --- Memory --------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Make the peak RSS start from now (Linux >= 4.0); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss(field_name: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(field_name)


# --- Report --------------------------------------------------------------------------


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000, help="reports to ingest, one per host (default 1000)")
    parser.add_argument("--updates", type=int, default=3000, help="updates in the generated catalog (default 3000)")
    parser.add_argument("--database-url", help="SQLite file to create or PostgreSQL database (default: a temp file)")
    parser.add_argument("--api", action="store_true", help="post the reports to the API instead of the service")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K", help="threads ingesting (default 1)")
    parser.add_argument(
        "--profiles", default=",".join(MIXED_ROTATION), help="OS profiles of the fleet, comma-separated (default all)"
    )
    parser.add_argument("--variants", type=int, default=4, help="distinct reports per OS profile (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the catalog and the variants")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="profile ingestion, print the top N")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = parser.parse_args()
    if min(args.hosts, args.updates, args.concurrency, args.variants) < 1:
        parser.error("--hosts, --updates, --concurrency and --variants must be at least 1")
    if args.cprofile and (args.concurrency != 1 or args.api):
        parser.error("--cprofile sees this thread only: use it with --concurrency 1 and without --api")
    return args


def prepare_database(engine: Engine, lab: Lab, workdir: Path) -> str:
    """Migrate, import the catalog, add the rule set the fleet follows; a controller token."""
    migrate(engine)
    imported = import_catalog(engine, lab.cab, workdir=workdir)
    with session_factory(engine)() as session:
        session.add(RuleSet(**BASELINE))
        token = create_token(session, "report-ingestion benchmark", TokenRole.CONTROLLER)
        session.commit()
    print(f"database: {engine.dialect.name}, catalog imported in {imported.duration_seconds:.1f} s")
    return token


def ingest_fleet(
    args: argparse.Namespace, engine: Engine, token: str, reports: list[dict[str, Any]], workdir: Path
) -> tuple[Results, float]:
    """Every host's report, through the service or the API; the results and the wall time."""
    results = Results()
    profile = cProfile.Profile() if args.cprofile else None
    if args.api:
        settings = Settings(data_dir=workdir, database_url=engine.url.render_as_string(hide_password=False))
        with TestClient(create_app(settings)) as client:
            elapsed = run(api_ingester(client, token, reports, results), args.hosts, args.concurrency, profile)
    else:
        ingester = direct_ingester(session_factory(engine), reports, results)
        elapsed = run(ingester, args.hosts, args.concurrency, profile)
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.cprofile)
    return results, elapsed


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="report-ingestion-") as scratch:
        workdir = Path(scratch)
        started = time.perf_counter()
        lab = generate_lab(workdir / "lab", args.updates, args.seed)
        print(f"catalog: {lab.updates} updates, generated in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        profiles = [profile.strip() for profile in args.profiles.split(",") if profile.strip()]
        reports = fleet_reports(lab, workdir / "hosts", profiles, args.variants, args.seed)
        sizes = [len(report["updates"]) for report in reports]
        print(
            f"reports: {len(profiles)} profiles x {args.variants} variants, {min(sizes)} to {max(sizes)} updates "
            f"each (mean {sum(sizes) / len(sizes):.0f}), scanned in {time.perf_counter() - started:.1f} s"
        )

        with fresh_database(args.database_url, workdir, args.keep) as url:
            engine = make_engine(url)
            try:
                token = prepare_database(engine, lab, workdir)
                size_before = database_size(engine)
                path = "the API" if args.api else "ingest_report"
                print(f"ingesting {args.hosts} reports through {path}, {args.concurrency} thread(s)")
                rss_before = rss("VmRSS")
                peak_reset = reset_peak_rss()
                results, elapsed = ingest_fleet(args, engine, token, reports, workdir)
                peak = rss("VmHWM")
                size_after = database_size(engine)
                rows = row_counts(engine)
            finally:
                engine.dispose()

    latencies = results.latencies
    print(f"  reports per second  {args.hosts / elapsed:.1f} ({elapsed:.1f} s in all)")
    print(
        f"  time per report     mean {1000 * sum(latencies) / len(latencies):.1f} ms, "
        f"p95 {1000 * percentile(latencies, 0.95):.1f} ms, max {1000 * max(latencies):.1f} ms"
    )
    if results.failures:
        print(f"  failed              {len(results.failures)} (first: {results.failures[0]})")
    growth = size_after - size_before
    print(
        f"  database size       {mib(size_before)} after the import, {mib(size_after)} after ingestion "
        f"({growth / args.hosts / 1024:.1f} KiB per host)"
    )
    peak_scope = "during ingestion" if peak_reset else "of the whole run"
    print(f"  peak RSS            {mib(peak)} {peak_scope} ({mib(rss_before)} before ingestion)")
    print("  rows                " + ", ".join(f"{table} {count}" for table, count in rows.items()))
    return 1 if results.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
