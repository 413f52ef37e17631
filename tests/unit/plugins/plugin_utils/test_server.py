# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The server client's reading of the sidecar and of the server's errors."""

from __future__ import annotations

import io
import json
import urllib.error
from typing import Any

import pytest

from ansible_collections.wuacache.wua.plugins.plugin_utils import _server
from ansible_collections.wuacache.wua.plugins.plugin_utils._server import ServerError, WuacacheServer

SHA256 = "ab" * 32


def answering(monkeypatch: pytest.MonkeyPatch, body: bytes | None = None, *, status: int = 200) -> list[dict[str, Any]]:
    """Make open_url answer ``body``, or fail with ``status``; return the calls it gets."""
    calls: list[dict[str, Any]] = []

    def open_url(url: str, **kwargs: Any) -> io.BytesIO:
        calls.append(dict(kwargs, url=url))
        if status != 200:
            raise urllib.error.HTTPError(url, status, "Unprocessable Content", {}, io.BytesIO(body or b""))  # type: ignore[arg-type]
        return io.BytesIO(body or b"")

    monkeypatch.setattr(_server, "open_url", open_url)
    return calls


@pytest.mark.parametrize("line", [f"{SHA256}  wsusscn2.cab\n", f"{SHA256.upper()} *wsusscn2.cab"])
def test_the_sidecar_gives_the_cab_digest_without_the_token(monkeypatch: pytest.MonkeyPatch, line: str) -> None:
    calls = answering(monkeypatch, line.encode("ascii"))

    assert WuacacheServer("https://wuacache.example/", "s3cret").cab_sha256() == SHA256

    [call] = calls
    assert call["url"] == "https://wuacache.example/wua/wsusscn2.cab.sha256"
    assert "Authorization" not in call["headers"]


def test_a_sidecar_for_another_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    answering(monkeypatch, f"{SHA256}  other.cab\n".encode("ascii"))

    with pytest.raises(ServerError, match="not a SHA-256 line for wsusscn2.cab"):
        WuacacheServer("https://wuacache.example", None).cab_sha256()


def test_validation_errors_are_listed_by_field(monkeypatch: pytest.MonkeyPatch) -> None:
    detail = [{"loc": ["body", "updates", 0, "update_id"], "msg": "String should match pattern"}]
    answering(monkeypatch, json.dumps({"detail": detail}).encode(), status=422)

    with pytest.raises(ServerError) as raised:
        WuacacheServer("https://wuacache.example", "s3cret").post_report("ws2022-01", {"updates": []})

    message = str(raised.value)
    assert "POST https://wuacache.example/api/v1/hosts/ws2022-01/reports failed with HTTP 422" in message
    assert "body.updates.0.update_id: String should match pattern" in message
    assert "s3cret" not in message


def test_the_token_and_the_tls_options_reach_open_url(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = answering(monkeypatch, b'{"host": "ws2022-01"}')

    server = WuacacheServer("https://wuacache.example", "s3cret", validate_certs=False, ca_path="/etc/ssl/wuacache.pem")
    assert server.plan("WS 01") == {"host": "ws2022-01"}

    [call] = calls
    assert call["url"] == "https://wuacache.example/api/v1/hosts/WS%2001/plan"
    assert call["headers"]["Authorization"] == "Bearer s3cret"
    assert (call["validate_certs"], call["ca_path"], call["use_netrc"]) == (False, "/etc/ssl/wuacache.pem", False)
