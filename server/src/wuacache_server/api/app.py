"""The FastAPI application of the wuacache server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wuacache_server.api.routes import api_router, packages
from wuacache_server.config import Settings
from wuacache_server.db.engine import is_contention, make_engine, session_factory
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
    # The last middleware added is the outermost.
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
    logger.warning("database busy answering %s %s: %s", request.method, request.url.path, exc.orig)
    return JSONResponse(
        {"detail": "the database is busy; try again shortly"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER)},
    )


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
