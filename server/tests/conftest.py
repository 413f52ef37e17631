"""Fixtures shared by the server's tests.

``database_url`` is parametrised over SQLite and PostgreSQL, so every test
that uses a database (directly, or through ``engine``, ``session``,
``settings`` or ``client``) runs on both backends, each time on a fresh
database. PostgreSQL runs when ``WUACACHE_TEST_POSTGRES_URL`` names a database
the tests may create schemas in (``postgresql://USER@HOST:PORT/NAME``), and is
skipped otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from wuacache_server.api.app import create_app
from wuacache_server.config import Settings
from wuacache_server.db.engine import make_engine, migrate, session_factory
from wuacache_server.db.models import TokenRole, utcnow
from wuacache_server.security import create_token

# Read once, before each test's environment is cleaned.
POSTGRES_URL = os.environ.get("WUACACHE_TEST_POSTGRES_URL", "")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the settings of the machine it runs on."""
    for name in list(os.environ):
        if name.upper().startswith("WUACACHE_") or name == "STATE_DIRECTORY":
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wuacache.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("WUACACHE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    schema = f"test_{uuid.uuid4().hex}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        # Every connection of the test works in its own schema only.
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the database, migrated to the current schema."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    # Deferred: a test's session must not hold SQLite's write lock while it
    # looks at what the app under test writes.
    with session_factory(engine, deferred=True)() as session:
        yield session


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url)


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The API on the migrated database, its lifespan running."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def issue_token(engine: Engine) -> Callable[..., str]:
    """Create a token in the database: ``issue_token(TokenRole.HOST, "win10-01")`` returns its secret."""

    def issue(role: TokenRole, host_name: str | None = None, name: str = "test") -> str:
        with session_factory(engine)() as session:
            expires_at = utcnow() + timedelta(days=1) if role is TokenRole.HOST else None
            token = create_token(session, name, role, host_name, expires_at=expires_at)
            session.commit()
        return token

    return issue


@pytest.fixture
def admin_headers(issue_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(TokenRole.ADMIN)}"}
