"""``GET``/``HEAD /wua/{file_name}``: what hosts download, with conditional and range requests.

Serving reads the repository folder only, so these tests need no database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wuacache_server.api.app import create_app
from wuacache_server.config import Settings

FILE_NAME = "windows10.0-kb5034122-x64_5b42a2683b478ab5a5ae20fa66f9bf9421d690f1.cab"
DATA = bytes(range(256)) * 400  # 102400 bytes, more than one chunk of the response
MTIME = 1_700_000_000


@pytest.fixture
def wua_dir(data_dir: Path) -> Path:
    path = Settings(data_dir=data_dir).wua_dir
    path.mkdir(parents=True)
    (path / FILE_NAME).write_bytes(DATA)
    os.utime(path / FILE_NAME, (MTIME, MTIME))
    return path


@pytest.fixture
def client(data_dir: Path, wua_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(data_dir=data_dir))) as client:
        yield client


def test_a_file_is_served_whole_with_its_validators(client: TestClient) -> None:
    answer = client.get(f"/wua/{FILE_NAME}")

    assert (answer.status_code, answer.content) == (200, DATA)
    assert answer.headers["content-length"] == str(len(DATA))
    assert answer.headers["content-type"] == "application/vnd.ms-cab-compressed"
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["last-modified"] == formatdate(MTIME, usegmt=True)
    assert answer.headers["etag"].startswith('"')
    assert "cache-control" not in answer.headers  # an update file never changes under its name


def test_head_answers_the_headers_of_get_without_the_body(client: TestClient) -> None:
    got = client.get(f"/wua/{FILE_NAME}")
    head = client.head(f"/wua/{FILE_NAME}")

    assert (head.status_code, head.content) == (200, b"")
    for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
        assert head.headers[name] == got.headers[name]


def test_an_unchanged_file_is_not_sent_again(client: TestClient) -> None:
    first = client.get(f"/wua/{FILE_NAME}")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]

    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": last_modified},
        {"If-Modified-Since": formatdate(MTIME + 3600, usegmt=True)},
    ):
        answer = client.get(f"/wua/{FILE_NAME}", headers=headers)
        assert (answer.status_code, answer.content) == (304, b""), headers
        assert (answer.headers["etag"], answer.headers["last-modified"]) == (etag, last_modified)
        assert client.head(f"/wua/{FILE_NAME}", headers=headers).status_code == 304


def test_a_changed_file_is_sent_again(client: TestClient, wua_dir: Path) -> None:
    etag = client.get(f"/wua/{FILE_NAME}").headers["etag"]

    for headers in (
        {"If-None-Match": '"other"'},
        {"If-Modified-Since": formatdate(MTIME - 1, usegmt=True)},
        {"If-Modified-Since": "yesterday"},
        # If-None-Match decides when both are sent.
        {"If-None-Match": '"other"', "If-Modified-Since": formatdate(MTIME, usegmt=True)},
    ):
        answer = client.get(f"/wua/{FILE_NAME}", headers=headers)
        assert (answer.status_code, answer.content) == (200, DATA), headers

    (wua_dir / FILE_NAME).write_bytes(DATA[::-1])
    answer = client.get(f"/wua/{FILE_NAME}", headers={"If-None-Match": etag})
    assert (answer.status_code, answer.content) == (200, DATA[::-1])
    assert answer.headers["etag"] != etag


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, len(DATA) - 1), ("bytes=-16", len(DATA) - 16, len(DATA) - 1)],
)
def test_a_range_is_served_alone(client: TestClient, range_header: str, first: int, last: int) -> None:
    answer = client.get(f"/wua/{FILE_NAME}", headers={"Range": range_header})

    assert (answer.status_code, answer.content) == (206, DATA[first : last + 1])
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert answer.headers["content-length"] == str(last - first + 1)


def test_if_range_resumes_only_the_same_file(client: TestClient) -> None:
    first = client.get(f"/wua/{FILE_NAME}")
    for validator in (first.headers["etag"], first.headers["last-modified"]):
        answer = client.get(f"/wua/{FILE_NAME}", headers={"Range": "bytes=100-", "If-Range": validator})
        assert (answer.status_code, answer.content) == (206, DATA[100:])

    changed = client.get(f"/wua/{FILE_NAME}", headers={"Range": "bytes=100-", "If-Range": '"an-older-file"'})
    assert (changed.status_code, changed.content) == (200, DATA)


def test_a_range_beyond_the_end_is_416(client: TestClient) -> None:
    answer = client.get(f"/wua/{FILE_NAME}", headers={"Range": f"bytes={len(DATA)}-"})

    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize(
    ("method", "range_header"),
    [
        ("HEAD", "bytes=0-99"),
        ("GET", "items=0-99"),
        ("GET", "bytes=500-100"),
        ("GET", "bytes=0-99, 500-100"),
        ("GET", "bytes=first-last"),
        ("GET", "bytes="),
    ],
)
def test_range_is_ignored_where_http_says_so(client: TestClient, method: str, range_header: str) -> None:
    # RFC 9110 14.2: Range only applies to GET, and an unknown unit or an
    # invalid range (14.1.2: a last position before the first) is ignored.
    answer = client.request(method, f"/wua/{FILE_NAME}", headers={"Range": range_header})

    assert answer.status_code == 200
    assert answer.headers["content-length"] == str(len(DATA))
    assert "content-range" not in answer.headers


def test_the_catalog_and_its_sidecar_are_served_and_always_revalidated(client: TestClient, wua_dir: Path) -> None:
    (wua_dir / "wsusscn2.cab").write_bytes(b"MSCF catalog")
    (wua_dir / "wsusscn2.cab.sha256").write_text("ab" * 32 + "  wsusscn2.cab\n", encoding="ascii")

    cab = client.get("/wua/wsusscn2.cab")
    sidecar = client.get("/wua/wsusscn2.cab.sha256")

    assert (cab.status_code, cab.content, cab.headers["cache-control"]) == (200, b"MSCF catalog", "no-cache")
    assert (sidecar.status_code, sidecar.text) == (200, "ab" * 32 + "  wsusscn2.cab\n")
    assert sidecar.headers["content-type"].startswith("text/plain")
    not_modified = client.get("/wua/wsusscn2.cab", headers={"If-None-Match": cab.headers["etag"]})
    assert (not_modified.status_code, not_modified.headers["cache-control"]) == (304, "no-cache")


@pytest.mark.parametrize(
    "path",
    [
        "/wua/missing.cab",
        "/wua/.partial",
        "/wua/.partial/" + FILE_NAME + ".part",
        "/wua/%2Epartial%2F" + FILE_NAME + ".part",
        "/wua/%2E%2E%2F.fetch.lock",
        "/wua/..%2F..%2Fwuacache.db",
        "/wua/%2E%2E",
        "/wua/a%20b.cab",
        "/wua/" + "a" * 201,
        "/wua/subdir",
        "/wua/link.cab",
        "/wua/",
    ],
)
def test_only_plain_files_of_the_folder_are_served(client: TestClient, wua_dir: Path, path: str) -> None:
    (wua_dir / ".partial").mkdir()
    (wua_dir / ".partial" / (FILE_NAME + ".part")).write_bytes(DATA[:10])
    (wua_dir.parent / ".fetch.lock").touch()
    (wua_dir / "subdir").mkdir()
    (wua_dir / "link.cab").symlink_to(wua_dir / FILE_NAME)

    for method in ("GET", "HEAD"):
        answer = client.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert DATA[:10] not in answer.content


def test_files_are_served_without_a_token(client: TestClient) -> None:
    answer = client.get(f"/wua/{FILE_NAME}", headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 200
