"""Packages: admins upload .msu and .cab files, the controller reads them, hosts download them anonymously."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect

from wuacache_server.api.app import create_app
from wuacache_server.cli import main
from wuacache_server.config import Settings
from wuacache_server.db.models import TokenRole

PACKAGES = "/api/v1/packages"
MSU = "windows10.0-kb5034441-x64.msu"
DATA = bytes(range(256)) * 400  # 102400 bytes, more than one chunk of a response
OCTETS = {"Content-Type": "application/octet-stream"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@pytest.fixture
def admin(admin_headers: dict[str, str]) -> dict[str, str]:
    return {**admin_headers, **OCTETS}


@pytest.fixture
def controller(issue_token: Callable[..., str]) -> dict[str, str]:
    return bearer(issue_token(TokenRole.CONTROLLER))


def upload(client: TestClient, headers: dict[str, str], name: str = MSU, content: Any = DATA, **params: str) -> Any:
    return client.put(f"{PACKAGES}/{name}", headers=headers, content=content, params=params)


def folder_contents(settings: Settings) -> list[str]:
    return sorted(path.name for path in settings.packages_dir.iterdir())


def test_an_uploaded_package_is_described_listed_and_served(
    client: TestClient, admin: dict[str, str], controller: dict[str, str], settings: Settings
) -> None:
    created = upload(client, admin, kb="kb5034441", description="WinRE update")

    assert created.status_code == 201
    package = created.json()
    assert {key: value for key, value in package.items() if not key.endswith("_at")} == {
        "name": MSU,
        "kind": "msu",
        "size": len(DATA),
        "sha256": b64(hashlib.sha256(DATA).digest()),
        "sha1": b64(hashlib.sha1(DATA).digest()),
        "kb": "5034441",
        "description": "WinRE update",
        "url": f"{settings.base_url}/packages/{MSU}",
    }
    assert package["created_at"] == package["updated_at"]
    assert (settings.packages_dir / MSU).read_bytes() == DATA
    assert folder_contents(settings) == [MSU]  # no upload left behind

    assert client.get(f"{PACKAGES}/{MSU}", headers=controller).json() == package
    assert client.get(PACKAGES, headers=controller).json() == [package]
    served = client.get(f"/packages/{MSU}")
    assert (served.status_code, served.content) == (200, DATA)


def test_packages_are_listed_by_name(client: TestClient, admin: dict[str, str]) -> None:
    for name in ("zeta.cab", "alpha.msu", "Mid.CAB"):
        assert upload(client, admin, name).status_code == 201

    listed = client.get(PACKAGES, headers=admin).json()

    assert [(package["name"], package["kind"]) for package in listed] == [
        ("Mid.CAB", "cab"),
        ("alpha.msu", "msu"),
        ("zeta.cab", "cab"),
    ]


def test_a_package_is_replaced_under_its_name(client: TestClient, admin: dict[str, str], settings: Settings) -> None:
    first = upload(client, admin, kb="5034441", description="first build").json()
    etag = client.get(f"/packages/{MSU}").headers["etag"]
    new_data = DATA[::-1] + b"fixed"

    replaced = upload(client, admin, content=new_data, description="rebuilt")

    assert replaced.status_code == 200
    package = replaced.json()
    assert (package["size"], package["sha256"]) == (len(new_data), b64(hashlib.sha256(new_data).digest()))
    assert (package["kb"], package["description"]) == (None, "rebuilt")  # the request's, as a PUT replaces
    assert package["created_at"] == first["created_at"]
    assert package["updated_at"] > first["updated_at"]
    assert client.get(PACKAGES, headers=admin).json() == [package]
    served = client.get(f"/packages/{MSU}", headers={"If-None-Match": etag})
    assert (served.status_code, served.content) == (200, new_data)
    assert folder_contents(settings) == [MSU]


def test_deleting_a_package_removes_it_and_its_file(
    client: TestClient, admin: dict[str, str], settings: Settings
) -> None:
    upload(client, admin)
    upload(client, admin, "other.cab")

    assert client.delete(f"{PACKAGES}/{MSU}", headers=admin).status_code == 204

    missing = client.get(f"{PACKAGES}/{MSU}", headers=admin)
    assert (missing.status_code, missing.json()) == (404, {"detail": f"no package named {MSU!r}"})
    assert client.get(f"/packages/{MSU}").status_code == 404
    assert [package["name"] for package in client.get(PACKAGES, headers=admin).json()] == ["other.cab"]
    assert folder_contents(settings) == ["other.cab"]
    assert client.delete(f"{PACKAGES}/{MSU}", headers=admin).status_code == 404


def test_only_admins_write_and_hosts_read_nothing(
    client: TestClient,
    admin: dict[str, str],
    controller: dict[str, str],
    issue_token: Callable[..., str],
    settings: Settings,
) -> None:
    upload(client, admin)
    host = bearer(issue_token(TokenRole.HOST, "win10-01"))

    for headers, status in (({}, 401), (bearer("wua_not-a-token"), 401), (host, 403)):
        assert client.get(PACKAGES, headers=headers).status_code == status
        assert client.get(f"{PACKAGES}/{MSU}", headers=headers).status_code == status
    for headers, status in (({}, 401), (host, 403), (controller, 403)):
        assert upload(client, {**headers, **OCTETS}, "new.msu").status_code == status
        assert upload(client, {**headers, **OCTETS}, content=b"replaced").status_code == status
        assert client.delete(f"{PACKAGES}/{MSU}", headers=headers).status_code == status
    assert client.get(PACKAGES, headers=controller).json()[0]["size"] == len(DATA)
    assert (settings.packages_dir / MSU).read_bytes() == DATA
    assert folder_contents(settings) == [MSU]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("..%2F..%2Fserver.msu", "must start with a letter or digit"),
        ("sub%2Fpackage.msu", "only letters, digits"),
        ("..%5Cpackage.msu", "must start with a letter or digit"),
        (".hidden.msu", "must start with a letter or digit"),
        ("package.exe", "must end in .msu or .cab"),
        ("package.msu.txt", "must end in .msu or .cab"),
        ("msu", "must end in .msu or .cab"),
        ("CON.cab", "is a device name on Windows"),
        ("nul.msu", "is a device name on Windows"),
        ("Com1.cab", "is a device name on Windows"),
        ("lpt9.x64.msu", "is a device name on Windows"),
    ],
)
def test_a_name_that_is_not_a_plain_msu_or_cab_file_name_is_refused(
    client: TestClient, admin: dict[str, str], settings: Settings, name: str, message: str
) -> None:
    answer = upload(client, admin, name)

    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert not settings.packages_dir.exists() or folder_contents(settings) == []
    assert not (settings.repository_dir / "server.msu").exists()


@pytest.mark.parametrize(
    ("params", "content", "message"),
    [
        ({"kb": "KB12x"}, DATA, "'KB12x' is not a KB number"),
        ({"kb": "0"}, DATA, "'0' is not a KB number"),
        ({}, b"", "the package is empty"),
    ],
)
def test_a_bad_kb_or_an_empty_file_is_refused(
    client: TestClient,
    admin: dict[str, str],
    settings: Settings,
    params: dict[str, str],
    content: bytes,
    message: str,
) -> None:
    answer = upload(client, admin, content=content, **params)

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(message)
    assert not settings.packages_dir.exists() or folder_contents(settings) == []


def test_overlong_query_parameters_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    assert upload(client, admin, description="x" * 1001).status_code == 422
    assert upload(client, admin, kb="1" * 13).status_code == 422
    assert client.get(PACKAGES, headers=admin).json() == []


def test_names_only_starting_like_a_windows_device_are_accepted(client: TestClient, admin: dict[str, str]) -> None:
    for name in ("com10.cab", "console.msu", "con-fix.cab"):
        assert upload(client, admin, name).status_code == 201


def test_nul_in_a_parameter_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    assert upload(client, admin, description="a\x00b").status_code == 422
    assert upload(client, admin, kb="5034441\x00").status_code == 422
    assert client.get(f"{PACKAGES}/a%00.msu", headers=admin).status_code == 422
    assert client.delete(f"{PACKAGES}/a%00.msu", headers=admin).status_code == 422
    assert client.get(PACKAGES, headers=admin).json() == []


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_the_file_itself_is_refused(
    client: TestClient, admin_headers: dict[str, str], content_type: str
) -> None:
    answer = upload(client, {**admin_headers, "Content-Type": content_type})

    assert answer.status_code == 415
    assert "application/octet-stream" in answer.json()["detail"]
    assert client.get(PACKAGES, headers=admin_headers).json() == []


def test_a_body_without_a_content_type_is_the_file(client: TestClient, admin_headers: dict[str, str]) -> None:
    answer = client.put(f"{PACKAGES}/{MSU}", headers=admin_headers, content=DATA)
    assert (answer.status_code, answer.json()["size"]) == (201, len(DATA))


@pytest.fixture
def small_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """Packages up to 4096 bytes, reports up to 1024: package uploads follow their own limit."""
    limits = {"max_package_bytes": 4096, "max_report_bytes": 1024}
    with TestClient(create_app(settings.model_copy(update=limits))) as client:
        yield client


def test_a_package_up_to_the_limit_is_accepted(small_client: TestClient, admin: dict[str, str]) -> None:
    answer = upload(small_client, admin, content=DATA[:4096])
    assert (answer.status_code, answer.json()["size"]) == (201, 4096)


def test_a_package_over_the_limit_is_refused_before_it_is_read(
    small_client: TestClient, admin: dict[str, str], settings: Settings
) -> None:
    answer = upload(small_client, admin, content=DATA[:4097])

    assert (answer.status_code, answer.json()) == (413, {"detail": "the request body exceeds the limit of 4096 bytes"})
    assert not settings.packages_dir.exists()


def test_a_chunked_package_over_the_limit_is_cut_off_and_discarded(
    small_client: TestClient, admin: dict[str, str], settings: Settings
) -> None:
    answer = upload(small_client, admin, content=iter([DATA[:3000], DATA[3000:6000]]))

    assert answer.status_code == 413
    assert folder_contents(settings) == []  # the partial upload is gone
    assert small_client.get(PACKAGES, headers=admin).json() == []


def test_package_names_are_unique_in_the_database(engine: Engine) -> None:
    unique = {tuple(constraint["column_names"]) for constraint in inspect(engine).get_unique_constraints("packages")}
    assert ("name",) in unique


def test_logs_say_what_happened_and_never_show_the_token(
    client: TestClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        sha256 = upload(client, admin).json()["sha256"]
        upload(client, admin)
        client.delete(f"{PACKAGES}/{MSU}", headers=admin)

    messages = [record.getMessage() for record in caplog.records if record.name.startswith("wuacache_server")]
    assert messages == [
        f"Package {MSU} added: {len(DATA)} bytes, SHA-256 {sha256}",
        f"Package {MSU} replaced: {len(DATA)} bytes, SHA-256 {sha256}",
        f"Package {MSU} removed: {len(DATA)} bytes, SHA-256 {sha256}",
    ]
    assert admin["Authorization"].removeprefix("Bearer ") not in caplog.text


# Serving: anonymous, like /wua/, for packages only.


@pytest.fixture
def served(client: TestClient, admin: dict[str, str]) -> TestClient:
    assert upload(client, admin).status_code == 201
    assert upload(client, admin, "update.cab", content=b"MSCF" + DATA).status_code == 201
    return client


def test_packages_are_served_with_their_media_type_and_always_revalidated(served: TestClient) -> None:
    msu = served.get(f"/packages/{MSU}")
    cab = served.head("/packages/update.cab")

    assert (msu.headers["content-type"], cab.headers["content-type"]) == (
        "application/octet-stream",
        "application/vnd.ms-cab-compressed",
    )
    assert msu.headers["cache-control"] == cab.headers["cache-control"] == "no-cache"  # replaceable under its name
    assert (cab.content, cab.headers["content-length"]) == (b"", str(len(DATA) + 4))
    assert msu.headers["accept-ranges"] == "bytes"


def test_a_package_is_served_by_range_and_not_sent_again_unchanged(served: TestClient) -> None:
    whole = served.get(f"/packages/{MSU}")

    part = served.get(f"/packages/{MSU}", headers={"Range": "bytes=1000-1099"})
    assert (part.status_code, part.content) == (206, DATA[1000:1100])
    assert part.headers["content-range"] == f"bytes 1000-1099/{len(DATA)}"
    for headers in ({"If-None-Match": whole.headers["etag"]}, {"If-Modified-Since": whole.headers["last-modified"]}):
        unchanged = served.get(f"/packages/{MSU}", headers=headers)
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        assert unchanged.headers["etag"] == whole.headers["etag"]


def test_only_published_packages_are_served(served: TestClient, settings: Settings) -> None:
    (settings.packages_dir / ".upload-0123456789abcdef").write_bytes(b"half an upload")
    (settings.packages_dir / "notes.txt").write_bytes(b"not a package")
    (settings.packages_dir / "link.msu").symlink_to(settings.packages_dir / MSU)

    for name in (".upload-0123456789abcdef", "notes.txt", "link.msu", "absent.msu", "..%2Fwua%2Fwsusscn2.cab"):
        answer = served.get(f"/packages/{name}")
        assert answer.status_code == 404, name
    assert served.get(f"/wua/{MSU}").status_code == 404  # packages are not update files


# The CLI, in process, on the test's database.


@pytest.fixture
def cli(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    monkeypatch.setenv("WUACACHE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WUACACHE_DATABASE_URL", settings.database_url)
    return lambda *args: main(["package", *args])


def test_the_cli_adds_lists_and_removes_packages(
    cli: Callable[..., int], capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "Windows10.0-KB5034441-x64.msu"
    source.write_bytes(DATA)
    sha256 = b64(hashlib.sha256(DATA).digest())

    assert cli("add", str(source), "--kb", "KB5034441", "--description", "WinRE update") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"package {source.name} added: {len(DATA)} bytes, SHA-256 {sha256}",
        f"hosts download it from {settings.base_url}/packages/{source.name}",
    ]
    assert cli("add", str(source), "--name", "renamed.cab") == 0
    assert capsys.readouterr().out.startswith(f"package renamed.cab added: {len(DATA)} bytes")
    source.write_bytes(b"new")
    assert cli("add", str(source)) == 0
    assert capsys.readouterr().out.startswith(f"package {source.name} replaced: 3 bytes")

    assert cli("list") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "KIND", "SIZE", "KB", "UPLOADED", "SHA-256", "DESCRIPTION"]
    assert [row.split()[:4] for row in rows] == [
        [source.name, "msu", "3", "-"],
        ["renamed.cab", "cab", str(len(DATA)), "-"],
    ]
    assert sorted(path.name for path in settings.packages_dir.iterdir()) == sorted([source.name, "renamed.cab"])

    assert cli("remove", "renamed.cab") == 0
    assert capsys.readouterr().out == "package renamed.cab removed\n"
    assert [path.name for path in settings.packages_dir.iterdir()] == [source.name]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "{file}", "--name", "../escape.msu"], "must start with a letter or digit"),
        (["add", "{file}", "--name", "package.zip"], "must end in .msu or .cab"),
        (["add", "{file}", "--kb", "latest"], "'latest' is not a KB number"),
        (["add", "{missing}"], "No such file or directory"),
        (["remove", "absent.msu"], "no package named 'absent.msu'"),
    ],
)
def test_cli_mistakes_are_one_line_errors(
    cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    source = tmp_path / "package.msu"
    source.write_bytes(DATA)
    paths = {"file": source, "missing": tmp_path / "missing.msu"}

    assert cli(*(arg.format(**paths) for arg in args)) == 2

    error = capsys.readouterr().err
    assert error.startswith("wuacache-server: error: ") and message in error
    assert error.count("\n") == 1
    assert not settings.packages_dir.exists() or list(settings.packages_dir.iterdir()) == []
    assert not (tmp_path / "escape.msu").exists()


def test_the_cli_refuses_a_package_over_the_limit(
    cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WUACACHE_MAX_PACKAGE_BYTES", "1KiB")
    source = tmp_path / "big.msu"
    source.write_bytes(DATA[:1025])

    assert cli("add", str(source)) == 2

    assert "the package exceeds the limit of 1024 bytes" in capsys.readouterr().err
    assert list(settings.packages_dir.iterdir()) == []
