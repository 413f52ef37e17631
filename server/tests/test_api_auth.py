from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from wuacache_server.api.app import create_app
from wuacache_server.config import Settings
from wuacache_server.db.models import ApiToken, TokenRole, utcnow
from wuacache_server.security import authenticate, create_token, may_act_for_host, record_use

TOKENS = "/api/v1/tokens"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_needs_no_token(client: TestClient) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "version": version("wuacache-server"), "database": True}


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/missing/wuacache.db")
    with TestClient(create_app(settings)) as client:
        answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.json()["database"] is False
    assert answer.json()["status"] == "degraded"


def test_the_api_is_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "wuacache server"
    assert schema["info"]["version"] == version("wuacache-server")
    assert {"/health", TOKENS, TOKENS + "/{token_id}"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wua_not-a-token"), bearer("no-prefix"), {"Authorization": "Basic YWRtaW46YWRtaW4="}],
    ids=["none", "unknown", "malformed", "basic"],
)
def test_calls_without_a_valid_token_get_401(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.get(TOKENS, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_host_tokens_may_not_manage_tokens(client: TestClient, issue_token: Callable[..., str]) -> None:
    token = issue_token(TokenRole.HOST, "win10-01")
    answer = client.get(TOKENS, headers=bearer(token))
    assert answer.status_code == 403
    assert answer.json() == {"detail": "this needs a token with role admin or controller"}
    assert client.post(TOKENS, headers=bearer(token), json={"name": "x", "role": "admin"}).status_code == 403


def test_a_controller_manages_host_tokens_only(
    client: TestClient, issue_token: Callable[..., str], admin_headers: dict[str, str]
) -> None:
    controller = bearer(issue_token(TokenRole.CONTROLLER))
    for role in ("admin", "controller"):
        answer = client.post(TOKENS, headers=controller, json={"name": "x", "role": role})
        assert answer.status_code == 403
        assert answer.json() == {"detail": "a controller token manages host tokens only"}
    admin_id = client.get(TOKENS, headers=admin_headers).json()[0]["id"]
    assert client.delete(f"{TOKENS}/{admin_id}", headers=controller).status_code == 403
    assert client.get(TOKENS, headers=admin_headers).status_code == 200  # not revoked

    minted = client.post(TOKENS, headers=controller, json={"name": "ws-0001", "role": "host", "host_name": "ws-0001"})
    assert minted.status_code == 201
    assert client.get("/api/v1/hosts", headers=bearer(minted.json()["token"])).status_code == 200
    assert client.delete(f"{TOKENS}/{minted.json()['id']}", headers=controller).status_code == 204
    assert client.get("/api/v1/hosts", headers=bearer(minted.json()["token"])).status_code == 401


def test_a_created_token_is_shown_once_and_stored_as_a_hash(
    client: TestClient, admin_headers: dict[str, str], session: Session
) -> None:
    created = client.post(TOKENS, headers=admin_headers, json={"name": "ansible", "role": "controller"})
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("wua_") and len(secret) > 40

    stored = session.scalars(select(ApiToken).where(ApiToken.name == "ansible")).one()
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(session.execute(select(ApiToken.__table__)).all())

    listed = client.get(TOKENS, headers=admin_headers)
    assert listed.status_code == 200
    assert secret not in listed.text
    assert [(token["name"], token["role"]) for token in listed.json()] == [("test", "admin"), ("ansible", "controller")]
    assert all("token" not in token for token in listed.json())


def test_a_created_token_works_at_once(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(TOKENS, headers=admin_headers, json={"name": "second admin", "role": "admin"})
    assert client.get(TOKENS, headers=bearer(created.json()["token"])).status_code == 200


def test_host_tokens_are_bound_to_a_normalised_host_name(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(TOKENS, headers=admin_headers, json={"name": "h", "role": "host", "host_name": "WIN10-01"})
    assert created.status_code == 201
    assert created.json()["host_name"] == "win10-01"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "h", "role": "host"}, "host_name is required for a host token"),
        ({"name": "c", "role": "controller", "host_name": "win10-01"}, "host_name is required for a host token"),
        ({"name": "x", "role": "superuser"}, "role"),
        ({"name": "", "role": "admin"}, "name"),
        ({"name": "h", "role": "host", "host_name": "bad name!"}, "is not a host name"),
        ({"name": "x", "role": "admin", "extra": 1}, "extra"),
    ],
)
def test_invalid_token_requests_get_422_without_echoing_input(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, object], field: str
) -> None:
    answer = client.post(TOKENS, headers=admin_headers, json=body)
    assert answer.status_code == 422
    assert field in answer.text
    assert all(set(error) == {"loc", "msg", "type"} for error in answer.json()["detail"])


def test_a_revoked_token_is_refused(
    client: TestClient, admin_headers: dict[str, str], issue_token: Callable[..., str], session: Session
) -> None:
    token = issue_token(TokenRole.ADMIN, name="leaked")
    token_id = session.scalars(select(ApiToken.id).where(ApiToken.name == "leaked")).one()

    assert client.delete(f"{TOKENS}/{token_id}", headers=admin_headers).status_code == 204
    revoked_at = client.get(TOKENS, headers=admin_headers).json()[-1]["revoked_at"]
    assert revoked_at is not None
    assert client.get(TOKENS, headers=bearer(token)).status_code == 401

    # Revoking again changes nothing; an unknown token is a 404.
    assert client.delete(f"{TOKENS}/{token_id}", headers=admin_headers).status_code == 204
    assert client.get(TOKENS, headers=admin_headers).json()[-1]["revoked_at"] == revoked_at
    assert client.delete(f"{TOKENS}/{token_id + 100}", headers=admin_headers).status_code == 404


def test_last_use_is_recorded_at_most_once_a_minute(session: Session) -> None:
    secret = create_token(session, "ansible", TokenRole.CONTROLLER)
    session.commit()

    token = authenticate(session, secret)
    assert token is not None and token.last_used_at is None  # authenticating only reads
    record_use(session, token)
    session.commit()
    first_use = session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id))
    assert first_use is not None

    record_use(session, token)
    session.commit()
    assert session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id)) == first_use

    session.execute(update(ApiToken).values(last_used_at=utcnow() - timedelta(minutes=2)))
    session.commit()
    session.refresh(token)
    record_use(session, token)
    session.commit()
    assert session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id)) > first_use


def test_host_tokens_act_for_their_host_only(session: Session) -> None:
    def live_token(role: TokenRole, host_name: str | None = None) -> ApiToken:
        expires_at = utcnow() + timedelta(days=1) if host_name else None
        token = authenticate(session, create_token(session, str(role), role, host_name, expires_at=expires_at))
        assert token is not None
        return token

    host = live_token(TokenRole.HOST, "win10-01")
    assert may_act_for_host(host, "WIN10-01")
    assert not may_act_for_host(host, "win10-02")
    assert may_act_for_host(live_token(TokenRole.CONTROLLER), "win10-02")
    assert may_act_for_host(live_token(TokenRole.ADMIN), "win10-02")


@pytest.fixture
def small_limit_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"max_report_bytes": 1024}))) as client:
        yield client


def test_an_oversized_body_gets_413_before_anything_reads_it(small_limit_client: TestClient, session: Session) -> None:
    body = b'{"name": "' + b"x" * 2000 + b'", "role": "admin"}'
    answer = small_limit_client.post(TOKENS, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413  # not 401: the body was refused before authentication
    assert answer.json() == {"detail": "the request body exceeds the limit of 1024 bytes"}


def test_an_oversized_chunked_body_gets_413(small_limit_client: TestClient, admin_headers: dict[str, str]) -> None:
    chunks = iter([b'{"name": "', b"x" * 800, b"x" * 800, b'", "role": "admin"}'])
    headers = {**admin_headers, "Content-Type": "application/json"}
    answer = small_limit_client.post(TOKENS, content=chunks, headers=headers)
    assert answer.status_code == 413


def test_a_chunked_body_without_a_token_gets_401(small_limit_client: TestClient) -> None:
    chunks = iter([b'{"name": "', b"x" * 800, b"x" * 800, b'", "role": "admin"}'])
    answer = small_limit_client.post(TOKENS, content=chunks, headers={"Content-Type": "application/json"})
    assert answer.status_code == 401


def test_a_chunked_body_within_the_limit_is_read_whole(
    small_limit_client: TestClient, admin_headers: dict[str, str]
) -> None:
    chunks = iter([b'{"name": "chunked",', b' "role": "controller"}'])
    headers = {**admin_headers, "Content-Type": "application/json"}
    answer = small_limit_client.post(TOKENS, content=chunks, headers=headers)
    assert answer.status_code == 201
    assert answer.json()["name"] == "chunked"


def test_an_unexpected_error_is_a_500_without_details(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("database password is hunter2")

    with TestClient(app) as client, caplog.at_level(logging.ERROR, logger="wuacache_server.api.app"):
        answer = client.get("/fail")

    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal server error"}
    assert "hunter2" not in answer.text
    logged = [record for record in caplog.records if record.name == "wuacache_server.api.app"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None and "hunter2" in str(logged[0].exc_info[1])
    assert "GET /fail" in logged[0].getMessage()


def test_an_expired_token_is_refused(client: TestClient, session: Session, admin_headers: dict[str, str]) -> None:
    created = client.post(TOKENS, headers=admin_headers, json={"name": "ws", "role": "host", "host_name": "ws-01"})
    secret = created.json()["token"]
    assert client.get("/api/v1/hosts", headers=bearer(secret)).status_code == 200

    session.execute(update(ApiToken).where(ApiToken.name == "ws").values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()

    assert client.get("/api/v1/hosts", headers=bearer(secret)).status_code == 401


def test_host_tokens_always_expire(client: TestClient, admin_headers: dict[str, str], settings: Settings) -> None:
    created = client.post(TOKENS, headers=admin_headers, json={"name": "ws", "role": "host", "host_name": "ws-01"})
    expires_at = datetime.fromisoformat(created.json()["expires_at"])
    assert abs(expires_at - (utcnow() + settings.host_token_lifetime)) < timedelta(minutes=5)

    controller = client.post(TOKENS, headers=admin_headers, json={"name": "ansible", "role": "controller"})
    assert controller.json()["expires_at"] is None
    past = client.post(
        TOKENS, headers=admin_headers, json={"name": "late", "role": "controller", "expires_at": "2001-01-01T00:00:00Z"}
    )
    assert past.status_code == 422
    assert "is past" in past.json()["detail"]


def test_a_rotated_token_keeps_working_for_its_grace_period_only(
    client: TestClient, session: Session, issue_token: Callable[..., str]
) -> None:
    controller = bearer(issue_token(TokenRole.CONTROLLER, name="ansible"))
    minted = client.post(TOKENS, headers=controller, json={"name": "ws", "role": "host", "host_name": "ws-01"}).json()

    rotated = client.post(f"{TOKENS}/{minted['id']}/rotate", headers=controller, json={"grace": "1h"})

    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert (new["name"], new["role"], new["host_name"]) == ("ws", "host", "ws-01")
    assert new["token"] != minted["token"]
    for secret in (minted["token"], new["token"]):
        assert client.get("/api/v1/hosts", headers=bearer(secret)).status_code == 200
    old = session.get_one(ApiToken, minted["id"])
    assert old.expires_at is not None and old.expires_at - utcnow() < timedelta(hours=1)

    session.execute(update(ApiToken).where(ApiToken.id == minted["id"]).values(expires_at=utcnow()))
    session.commit()
    assert client.get("/api/v1/hosts", headers=bearer(minted["token"])).status_code == 401
    assert client.get("/api/v1/hosts", headers=bearer(new["token"])).status_code == 200
    again = client.post(f"{TOKENS}/{minted['id']}/rotate", headers=controller, json={})
    assert again.status_code == 409


@pytest.mark.parametrize("grace", ["-1h", "31d", "soon"])
def test_a_bad_grace_period_is_refused(client: TestClient, admin_headers: dict[str, str], grace: str) -> None:
    admin_id = client.get(TOKENS, headers=admin_headers).json()[0]["id"]
    assert client.post(f"{TOKENS}/{admin_id}/rotate", headers=admin_headers, json={"grace": grace}).status_code == 422
