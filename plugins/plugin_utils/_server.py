# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Client of the wuacache server's API, as the controller uses it (docs/server.md).

The controller reports each host's scan and reads back the host's plan, and
reads the packages hosts install; the catalog and its digest are public files,
read without the token.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
from typing import Any

from ansible.errors import AnsibleError
from ansible.module_utils.urls import open_url

CAB_PATH = "/wua/wsusscn2.cab"
_USER_AGENT = "wuacache.wua"
_SHA256_LINE = re.compile(r"([0-9a-fA-F]{64})\s+\*?wsusscn2\.cab\s*")


class ServerError(AnsibleError):
    """The wuacache server could not be reached, or refused a request."""


class WuacacheServer:
    """The server at ``url``, reached with the controller's ``token``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        validate_certs: bool = True,
        ca_path: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._validate_certs = validate_certs
        self._ca_path = ca_path
        self._timeout = timeout

    @property
    def cab_url(self) -> str:
        """Where hosts download the catalog from."""
        return self.url + CAB_PATH

    def cab_sha256(self) -> str:
        """The catalog's SHA-256, from the sidecar the server publishes next to it (``<hex>  wsusscn2.cab``)."""
        text = self._request("GET", f"{CAB_PATH}.sha256", authenticated=False).decode("ascii", errors="replace")
        match = _SHA256_LINE.fullmatch(text)
        if match is None:
            raise ServerError(f"{self.cab_url}.sha256 is not a SHA-256 line for wsusscn2.cab: {text[:200]!r}")
        return match.group(1).lower()

    def post_report(self, host_name: str, report: dict[str, Any]) -> dict[str, Any]:
        """Report a host's scan; the server answers with the host's plan."""
        return self._json("POST", f"{self._host_path(host_name)}/reports", report)

    def plan(self, host_name: str) -> dict[str, Any]:
        """The host's current plan, with whether each file is on the server now."""
        return self._json("GET", f"{self._host_path(host_name)}/plan")

    def package(self, name: str) -> dict[str, Any]:
        """A package admins uploaded: its name, kind, size, digests (base64), KB and the ``url`` hosts download it from."""
        return self._json("GET", f"/api/v1/packages/{urllib.parse.quote(name, safe='')}")

    @staticmethod
    def _host_path(host_name: str) -> str:
        return f"/api/v1/hosts/{urllib.parse.quote(host_name, safe='')}"

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self._request(method, path, body)
        try:
            return json.loads(answer)
        except ValueError:
            raise ServerError(f"{method} {self.url}{path} did not answer with JSON: {answer[:200]!r}") from None

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, *, authenticated: bool = True) -> bytes:
        url = self.url + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        if authenticated and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            with open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                timeout=self._timeout,
                validate_certs=self._validate_certs,
                ca_path=self._ca_path,
                http_agent=_USER_AGENT,
                use_netrc=False,
            ) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise ServerError(f"{method} {url} failed with HTTP {error.code}: {_detail(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServerError(f"{method} {url} failed: the wuacache server could not be reached ({reason})") from None


def _detail(error: urllib.error.HTTPError) -> str:
    """The server's own explanation: FastAPI's ``detail``, a message or a list of validation errors."""
    body = error.read()
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace")[:500] or str(error.reason)
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}" if isinstance(item, dict) else str(item)
            for item in detail
        )
    return str(detail)
