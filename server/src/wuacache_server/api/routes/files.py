"""``GET``/``HEAD /wua/{file_name}`` and ``/packages/{name}``: what hosts download.

``/wua/`` serves the catalog and the update files: public Microsoft content
the server verified first. ``/packages/`` serves the packages admins
uploaded. No token is needed: hosts download anonymously. Only plain names in
each flat folder are served; anything else (paths, dot-files such as partial
downloads and uploads) is 404.

Starlette's FileResponse streams the file and handles ``Range`` (206, 416)
and ``If-Range``. This module adds what it lacks: ``If-None-Match`` and
``If-Modified-Since`` (304), and ignoring ``Range`` on HEAD, in units other
than bytes and when its ranges are invalid (an inverted ``bytes=500-100``,
say), as RFC 9110 (14.2) requires, where Starlette answers 400.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from wuacache_server.api.deps import SettingsDep
from wuacache_server.catalog.cabsync import CAB_NAME, SIDECAR_NAME
from wuacache_server.db.models import PackageKind
from wuacache_server.fetch.downloader import validate_file_name
from wuacache_server.httpdate import parse_http_date
from wuacache_server.services.packages import InvalidPackage, package_kind

# The catalog, its sidecar and packages change under the same name: caches must
# ask (conditionally) every time. Update files never change under their name.
_REVALIDATED = {CAB_NAME, SIDECAR_NAME}
_ALWAYS_REVALIDATE = {"Cache-Control": "no-cache"}
# Set rather than guessed: not every system's MIME table knows .msu.
_PACKAGE_MEDIA_TYPES = {
    PackageKind.MSU: "application/octet-stream",
    PackageKind.CAB: "application/vnd.ms-cab-compressed",
}

router = APIRouter(tags=["files"])


# RFC 9110 14.1.2: int-range or suffix-range. Positions of more digits than
# any file's size has are not worth parsing: such a Range is ignored.
_BYTE_RANGE = re.compile(r"(?P<first>[0-9]{1,18})-(?P<last>[0-9]{0,18})|-[0-9]{1,18}")


def _valid_byte_ranges(range_set: str) -> bool:
    """Whether ``range_set`` (what follows ``bytes=``) is a valid list of byte ranges (RFC 9110 14.1.2)."""
    specs = [spec.strip(" \t") for spec in range_set.split(",")]
    if not any(specs):
        return False
    for spec in filter(None, specs):  # a list may have empty elements (RFC 9110 5.6.1)
        match = _BYTE_RANGE.fullmatch(spec)
        if match is None:
            return False
        if match["last"] and int(match["last"]) < int(match["first"]):
            return False
    return True


class RepositoryFileResponse(FileResponse):
    """A FileResponse that ignores ``Range`` where RFC 9110 says a server must."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        range_header = Headers(scope=scope).get("range")
        if range_header is not None:
            unit, _, range_set = range_header.partition("=")
            if scope["method"] != "GET" or unit.strip().lower() != "bytes" or not _valid_byte_ranges(range_set):
                headers = [(name, value) for name, value in scope["headers"] if name.lower() != b"range"]
                scope = {**scope, "headers": headers}
        await super().__call__(scope, receive, send)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    status.HTTP_200_OK: {"content": {"application/octet-stream": {}}, "description": "The file."},
    status.HTTP_206_PARTIAL_CONTENT: {"description": "The byte range asked for."},
    status.HTTP_304_NOT_MODIFIED: {"description": "The file has not changed since the copy the client has."},
    status.HTTP_404_NOT_FOUND: {"description": "No such file."},
    status.HTTP_416_RANGE_NOT_SATISFIABLE: {"description": "The range lies beyond the end of the file."},
}


@router.get("/wua/{file_name}", response_class=RepositoryFileResponse, responses=_RESPONSES)
@router.head("/wua/{file_name}", operation_id="head_file", response_class=RepositoryFileResponse, responses=_RESPONSES)
def get_file(file_name: str, request: Request, settings: SettingsDep) -> Response:
    """A file hosts download: the catalog `wsusscn2.cab`, its `.sha256` sidecar, or an update file."""
    headers = _ALWAYS_REVALIDATE if file_name in _REVALIDATED else {}
    media_type = "text/plain; charset=us-ascii" if file_name == SIDECAR_NAME else None
    return _serve(request, settings.wua_dir, file_name, headers, media_type)


@router.get("/packages/{name}", response_class=RepositoryFileResponse, responses=_RESPONSES)
@router.head(
    "/packages/{name}", operation_id="head_package", response_class=RepositoryFileResponse, responses=_RESPONSES
)
def get_package(name: str, request: Request, settings: SettingsDep) -> Response:
    """A package an admin uploaded (`.msu` or `.cab`), for hosts to install."""
    try:
        kind = package_kind(name)
    except InvalidPackage:
        raise _not_found(name) from None
    return _serve(request, settings.packages_dir, name, _ALWAYS_REVALIDATE, _PACKAGE_MEDIA_TYPES[kind])


def _serve(request: Request, folder: Path, file_name: str, headers: dict[str, str], media_type: str | None) -> Response:
    """The file, or 304 when the client's copy is current; ``media_type`` None guesses it from the name."""
    path, info = _published_file(folder, file_name)
    response = RepositoryFileResponse(path, stat_result=info, headers=headers, media_type=media_type)
    if _not_modified(request.headers, response.headers["etag"], info):
        validators = {name: response.headers[name] for name in ("etag", "last-modified")}
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={**headers, **validators})
    return response


def _not_found(file_name: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no file {file_name!r} on this server")


def _published_file(folder: Path, file_name: str) -> tuple[Path, os.stat_result]:
    not_found = _not_found(file_name)
    try:
        validate_file_name(file_name)
    except ValueError:
        raise not_found from None
    path = folder / file_name
    try:
        info = path.lstat()  # a link is not something the server published
    except OSError:
        raise not_found from None
    if not stat.S_ISREG(info.st_mode):
        raise not_found
    return path, info


def _not_modified(request_headers: Headers, etag: str, info: os.stat_result) -> bool:
    """Whether the client's copy is current (RFC 9110 13.1.2, 13.1.3, 13.2.2)."""
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        # Weak comparison: the opaque tags match, W/ or not.
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    since = parse_http_date(if_modified_since)
    if since is None:
        return False  # not an HTTP-date: ignored
    # Last-Modified has whole seconds.
    return int(info.st_mtime) <= since.timestamp()
