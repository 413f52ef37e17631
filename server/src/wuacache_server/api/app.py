"""The FastAPI application of the wuacache server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wuacache_server.api.deps import TOKEN_SCOPE_KEY, UNAUTHENTICATED_DETAIL, UNAUTHENTICATED_HEADERS
from wuacache_server.api.routes import api_router, packages
from wuacache_server.config import Settings
from wuacache_server.db.engine import is_contention, make_engine, session_factory
from wuacache_server.db.models import ApiToken
from wuacache_server.security import authenticate, record_use
from wuacache_server.services.cab import recover_cab_sync
from wuacache_server.services.fetching import FetchService
from wuacache_server.services.scheduler import Scheduler

logger = logging.getLogger(__name__)

DATABASE_BUSY_RETRY_AFTER = 2  # seconds


def create_app(settings: Settings, *, background_jobs: bool = False) -> FastAPI:
    """The API, serving the database ``settings`` name (migrated beforehand).

    With ``background_jobs`` (what ``wuacache-server serve`` runs), the app
    also recovers from a cab sync its process did not live to finish, downloads
    what hosts need as soon as their reports say so, and runs the scheduled cab
    sync, fetch and cleanup.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.engine = engine
        app.state.session_factory = session_factory(engine)
        app.state.read_session_factory = session_factory(engine, deferred=True)
        try:
            with ExitStack() as background:
                if background_jobs:
                    recover_cab_sync(settings, app.state.session_factory)
                    fetch_service = background.enter_context(FetchService(settings, app.state.session_factory))
                    app.state.fetch_service = fetch_service
                    app.state.on_new_needs = fetch_service.trigger
                    scheduler = Scheduler(settings, app.state.session_factory, fetch_service)
                    scheduler.start()
                    background.callback(scheduler.stop)
                yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="wuacache server",
        version=version("wuacache-server"),
        summary="Offline Windows Update catalog and need-driven update cache for the wuacache.wua collection.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(api_router)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_busy)  # type: ignore[arg-type]
    # The last middleware added is the outermost: a declared Content-Length
    # over the limit is refused before the token costs a database lookup.
    app.add_middleware(Authentication, path_prefix=API_PATH_PREFIX)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_report_bytes,
        path_limits={packages.UPLOAD_PATH_PREFIX: settings.max_package_bytes},
    )
    app.add_middleware(UnexpectedErrors)
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own answer minus the "input" it echoes, which may be huge or a secret.
    errors = [{"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def _database_busy(request: Request, exc: DBAPIError) -> JSONResponse:
    # A write that could not take its lock in time changed nothing: the client
    # may send it again. Any other database error is unexpected.
    if not is_contention(exc):
        raise exc
    return database_busy_response(request.method, request.url.path, exc)


def database_busy_response(method: str, path: str, error: DBAPIError) -> JSONResponse:
    """503 with Retry-After, for a request the database was too busy to serve."""
    logger.warning("database busy answering %s %s: %s", method, path, error.orig)
    return JSONResponse(
        {"detail": "the database is busy; try again shortly"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER)},
    )


API_PATH_PREFIX = "/api/"


class Authentication:
    """Authenticate the bearer token of every request under ``path_prefix``
    from its headers alone, before anything reads its body.

    A missing or unknown token gets 401 at once, so that no unauthenticated
    body is ever received, parsed or held in memory. A live token goes on the
    request's scope, where :func:`~wuacache_server.api.deps.get_token` finds
    it; the routes check its role. Paths outside the prefix (``/health``, the
    OpenAPI description, the files hosts download) need no token.
    """

    def __init__(self, app: ASGIApp, path_prefix: str) -> None:
        self.app = app
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        scheme, presented = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
        token = None
        if scheme.lower() == "bearer" and presented:
            try:
                # Reading the token takes no write lock; noting its use starts a transaction of its own.
                token = await run_in_threadpool(_authenticate, scope["app"].state.read_session_factory, presented)
            except DBAPIError as error:
                if not is_contention(error):
                    raise
                await database_busy_response(scope["method"], scope["path"], error)(scope, receive, send)
                return
        if token is None:
            response = JSONResponse(
                {"detail": UNAUTHENTICATED_DETAIL}, status_code=401, headers=UNAUTHENTICATED_HEADERS
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[TOKEN_SCOPE_KEY] = token
        await self.app(scope, receive, send)


def _authenticate(make_session: sessionmaker[Session], presented: str) -> ApiToken | None:
    """The live token whose secret was presented, its use recorded; None if there is none."""
    with make_session() as session:
        token = authenticate(session, presented)
        if token is None:
            return None
        session.commit()  # ends the reading transaction: the write below starts its own
        record_use(session, token)
        session.commit()
        return token


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before anything parses them.

    ``path_limits`` gives other limits to paths starting with its prefixes. A
    declared Content-Length is refused at once; a chunked body is counted as
    it arrives and cut off at the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = next(
            (limit for prefix, limit in self.path_limits.items() if scope["path"].startswith(prefix)), self.max_bytes
        )
        refusal = f"the request body exceeds the limit of {max_bytes} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            response = JSONResponse({"detail": refusal}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise HTTPException(413, refusal)
            return message

        await self.app(scope, counted_receive, send)


class UnexpectedErrors:
    """Answer any unhandled exception with a generic 500: the traceback goes to
    the log, never to the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception:
            if response_started:  # too late for a 500: let the server drop the connection
                raise
            logger.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send)
