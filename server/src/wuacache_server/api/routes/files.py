"""``GET``/``HEAD /wua/{file_name}``: the catalog and the update files, for hosts.

No token is needed: hosts download anonymously, and every file published
here is public Microsoft content the server verified first. Only plain names
in the flat folder are served; anything else (paths, dot-files such as the
partial downloads' folder) is 404.

Starlette's FileResponse streams the file and handles ``Range`` (206, 416)
and ``If-Range``. This module adds what it lacks: ``If-None-Match`` and
``If-Modified-Since`` (304), and ignoring ``Range`` on HEAD and in units other
than bytes, as RFC 9110 (14.2) requires.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from wuacache_server.api.deps import SettingsDep
from wuacache_server.catalog.cabsync import CAB_NAME, SIDECAR_NAME
from wuacache_server.fetch.downloader import validate_file_name
from wuacache_server.httpdate import parse_http_date

# The catalog and its sidecar change under the same name: caches must ask
# (conditionally) every time. Update files never change under their name.
_REVALIDATED = {CAB_NAME, SIDECAR_NAME}

router = APIRouter(tags=["files"])


class RepositoryFileResponse(FileResponse):
    """A FileResponse that ignores ``Range`` where RFC 9110 says a server must."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        range_header = Headers(scope=scope).get("range")
        if range_header is not None:
            unit = range_header.partition("=")[0].strip().lower()
            if scope["method"] != "GET" or unit != "bytes":
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
    path, info = _published_file(settings.wua_dir, file_name)
    headers = {"Cache-Control": "no-cache"} if file_name in _REVALIDATED else {}
    media_type = "text/plain; charset=us-ascii" if file_name == SIDECAR_NAME else None
    response = RepositoryFileResponse(path, stat_result=info, headers=headers, media_type=media_type)
    if _not_modified(request.headers, response.headers["etag"], info):
        validators = {name: response.headers[name] for name in ("etag", "last-modified")}
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={**headers, **validators})
    return response


def _published_file(wua_dir: Path, file_name: str) -> tuple[Path, os.stat_result]:
    not_found = HTTPException(status.HTTP_404_NOT_FOUND, f"no file {file_name!r} on this server")
    try:
        validate_file_name(file_name)
    except ValueError:
        raise not_found from None
    path = wua_dir / file_name
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
