"""``/api/v1/packages``: standalone update packages admins upload for hosts to install.

Admins upload, replace and delete them; the Ansible controller may read them.
Hosts download a package anonymously from its ``url`` (``/packages/<name>``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from wuacache_server.api.deps import SessionDep, SettingsDep, TokenDep, require_role
from wuacache_server.api.schemas import Text
from wuacache_server.config import Settings
from wuacache_server.db.models import Package, PackageKind, TokenRole
from wuacache_server.security import actor
from wuacache_server.services import audit
from wuacache_server.services.packages import (
    MAX_DESCRIPTION_LENGTH,
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

logger = logging.getLogger(__name__)

# The app bounds request bodies under this prefix by max_package_bytes, not max_report_bytes.
UPLOAD_PATH_PREFIX = "/api/v1/packages/"
UPLOAD_MEDIA_TYPE = "application/octet-stream"

router = APIRouter(
    prefix="/packages",
    tags=["packages"],
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "Neither an admin nor a controller token; writes need admin."},
    },
)
ADMIN_ONLY = [require_role()]
# The routes take "{name:path}": a name with a slash reaches the checks, and their message.
PackageName = Annotated[
    Text,
    Path(
        max_length=255,
        description="The package's file name, ending in .msu or .cab.",
        examples=["windows10.0-kb5034441-x64.msu"],
    ),
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {status.HTTP_404_NOT_FOUND: {"description": "No such package."}}


class PackagePublic(BaseModel):
    """A package hosts may download and install."""

    name: str = Field(description="Its file name, under which hosts download it.")
    kind: PackageKind = Field(description="`msu` (installed with wusa) or `cab` (installed with DISM).")
    size: int = Field(description="Its size in bytes.")
    sha256: str = Field(description="Base64 SHA-256 of the file.")
    sha1: str = Field(description="Base64 SHA-1 of the file, as the catalog gives update files'.")
    kb: str | None = Field(description="The KB it installs, as digits; null when the admin named none.")
    description: str = Field(description="What the admin said it is.")
    created_at: datetime = Field(description="When a package of this name was first uploaded.")
    updated_at: datetime = Field(description="When its current file was uploaded.")
    url: str = Field(description="Where hosts download it, without a token.")


def _public(package: Package, settings: Settings) -> PackagePublic:
    return PackagePublic(
        name=package.name,
        kind=package.kind,
        size=package.size,
        sha256=package.sha256,
        sha1=package.sha1,
        kb=package.kb,
        description=package.description,
        created_at=package.created_at,
        updated_at=package.updated_at,
        url=package_url(settings.base_url, package.name),
    )


def _find(session: SessionDep, name: PackageName) -> Package:
    package = find_package(session, name)
    if package is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no package named {name!r}")
    return package


PackageDep = Annotated[Package, Depends(_find)]


@router.put(
    "/{name:path}",
    dependencies=ADMIN_ONLY,
    responses={
        status.HTTP_201_CREATED: {"description": "A new package.", "model": PackagePublic},
        status.HTTP_409_CONFLICT: {"description": "Another upload created a package of that name meanwhile."},
        status.HTTP_413_CONTENT_TOO_LARGE: {"description": "The file exceeds max_package_bytes."},
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {"description": "The body is not application/octet-stream."},
        status.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "A bad name, KB or description, or an empty file."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The package file itself.",
            "content": {UPLOAD_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(
    name: PackageName,
    token: TokenDep,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    kb: Annotated[
        Text | None,
        Query(max_length=12, description='The KB the package installs, with or without "KB".', examples=["KB5034441"]),
    ] = None,
    description: Annotated[
        Text, Query(max_length=MAX_DESCRIPTION_LENGTH, description="What the package is, for admins.")
    ] = "",
) -> PackagePublic:
    """Upload a package, or replace the one of that name (200; 201 when new).

    The body is the file itself, as `application/octet-stream` (`curl -T FILE`).
    A replaced package takes this request's KB and description.
    """
    media_type = request.headers.get("content-type", UPLOAD_MEDIA_TYPE).partition(";")[0].strip().lower()
    if media_type != UPLOAD_MEDIA_TYPE:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the file itself as {UPLOAD_MEDIA_TYPE}, not {media_type}",
        )
    try:
        info = PackageInfo.checked(name, kb, description)  # before receiving what would be refused
        with PackageUpload(settings.packages_dir, settings.max_package_bytes) as received:
            async for chunk in request.stream():
                # Disk writes and hashing stay off the event loop.
                await anyio.to_thread.run_sync(received.write, chunk)
            saved = await anyio.to_thread.run_sync(partial(save_package, session, received, info))
    except InvalidPackage as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except PackageTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    except PackageConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ClientDisconnect:
        logger.info("Upload of package %s abandoned: the client disconnected", name)
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the upload ended before its body did") from None
    if not saved.replaced:
        response.status_code = status.HTTP_201_CREATED
    public = _public(saved.package, settings)
    action = "package.replace" if saved.replaced else "package.add"
    details = public.model_dump(mode="json", include={"kind", "size", "sha256", "kb", "description"})
    await anyio.to_thread.run_sync(partial(audit.record_committed, session, actor(token), action, name, **details))
    return public


@router.get("")
def list_all(session: SessionDep, settings: SettingsDep) -> list[PackagePublic]:
    """Every package, by name."""
    return [_public(package, settings) for package in list_packages(session)]


@router.get("/{name:path}", responses=_NOT_FOUND)
def get(package: PackageDep, settings: SettingsDep) -> PackagePublic:
    """One package."""
    return _public(package, settings)


@router.delete("/{name:path}", status_code=status.HTTP_204_NO_CONTENT, dependencies=ADMIN_ONLY, responses=_NOT_FOUND)
def remove(package: PackageDep, session: SessionDep, settings: SettingsDep, token: TokenDep) -> None:
    """Delete a package and its file: hosts can no longer download it."""
    name = package.name
    remove_package(session, settings.packages_dir, package)
    audit.record_committed(session, actor(token), "package.remove", name)
