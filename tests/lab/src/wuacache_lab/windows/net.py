"""HTTP as a PowerShell process of an emulated host reaches it: System.Net of .NET Framework 4.8.

``ServicePointManager``, ``WebRequest``/``HttpWebRequest``,
``HttpWebResponse``, its response stream, and the ``WebException`` of a
failure, with .NET's members, defaults and messages. The bytes really travel:
a GET goes to the URL through the host's proxy setting (which, as .NET's
``WebProxy`` does, never applies to a loopback address), and
``Stream.CopyTo`` writes the body into the destination stream (a FileStream
of the host's disk) as it arrives, so that a transfer cut short leaves what
came before the cut.

Behaviour the scripts depend on:

- ``ServicePointManager.SecurityProtocol`` starts, in each process, from the
  registry as .NET Framework reads it ("Transport Layer Security (TLS) best
  practices with the .NET Framework", dotnet/docs
  docs/framework/network-programming/tls.md): ``SystemDefaultTlsVersions``
  1 gives SystemDefault, ``SchUseStrongCrypto`` 1 gives TLS 1.0 to 1.2, and
  neither gives SSL 3.0 and TLS 1.0. That page makes the defaults depend on
  the .NET Framework version an app targets, which it does not say for
  powershell.exe, a native program that hosts the CLR: the lab follows what
  Windows PowerShell 5.1 is commonly seen to answer without the values,
  "Ssl3, Tls", the defaults of an app that targets a version before 4.6. A
  process reads the key of its registry view: the native one for the
  System32 powershell.exe, the only one the lab runs (WOW6432Node is the view
  of 32-bit processes on 64-bit Windows);
- an HTTPS request offers the server exactly the protocols SecurityProtocol
  allows, as Schannel does ("Protocols in TLS/SSL (Schannel SSP)",
  MicrosoftDocs/win32 desktop-src/SecAuthN/protocols-in-tls-ssl--schannel-ssp-.md):
  SystemDefault offers what the OS enables for clients by default, explicit
  flags those of them the OS supports. TLS 1.2 is enabled on every Windows
  the lab emulates, TLS 1.3 on Windows 11 and Server 2022 only. Of the
  others, SSL 3.0 is disabled for clients (from Windows 10 1607), and TLS
  1.0 and 1.1, which Windows still offers, no server of the lab accepts, like
  today's servers: the lab leaves them out, and a request allowed neither TLS
  1.2 nor 1.3 fails as the handshake would, with SecureChannelFailure;
- ``AddRange(from)`` asks for ``bytes=<from>-``;
- ``GetResponse()`` throws a WebException for an HTTP error status (its
  ``Response`` holds the answer) and when no answer comes, with the
  ``Status`` .NET gives each case;
- reading the body of a broken connection throws an IOException ("Unable to
  read data from the transport connection: ...").
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3
from urllib3.util import SKIP_HEADER

from wuacache_lab.powershell.conversions import to_integer, to_string
from wuacache_lab.powershell.corelib import Uri
from wuacache_lab.powershell.dotnet import dotnet_type, static, static_property
from wuacache_lab.powershell.errors import LabLimitation, PowerShellError, dotnet_error
from wuacache_lab.powershell.reference import ReferenceContracts
from wuacache_lab.powershell.runtime import Runtime
from wuacache_lab.powershell.values import EnumValue
from wuacache_lab.windows.filesystem import Stream, enum_argument
from wuacache_lab.windows.profiles import OsProfile
from wuacache_lab.windows.runtime import HostRuntime, host_runtime
from wuacache_lab.windows.system import NET_FRAMEWORK_KEY

SECURITY_PROTOCOL = ReferenceContracts.enum_definition("System.Net.SecurityProtocolType")
STATUS_CODE = ReferenceContracts.enum_definition("System.Net.HttpStatusCode")
EXCEPTION_STATUS = ReferenceContracts.enum_definition("System.Net.WebExceptionStatus")
assert SECURITY_PROTOCOL is not None and STATUS_CODE is not None and EXCEPTION_STATUS is not None

SSL3 = 48
TLS = 192
TLS11 = 768
TLS12 = 3072
TLS13 = 12288
SYSTEM_DEFAULT = 0

# HttpWebRequest's defaults (the Timeout and ReadWriteTimeout pages): milliseconds.
DEFAULT_TIMEOUT = 100_000
DEFAULT_READ_WRITE_TIMEOUT = 300_000
# What one read of the body takes at most: Stream.CopyTo's default buffer.
COPY_BUFFER_SIZE = 81_920

# A handshake with no protocol both sides speak.
SECURE_CHANNEL_FAILURE = "The request was aborted: Could not create SSL/TLS secure channel."

_security_protocols: weakref.WeakKeyDictionary[Runtime, int] = weakref.WeakKeyDictionary()
_protocols_lock = threading.Lock()


def _security_protocol(runtime: HostRuntime) -> int:
    """The process's ServicePointManager.SecurityProtocol, first read from the registry."""
    with _protocols_lock:
        if runtime not in _security_protocols:
            values = runtime.system.registry_values(f"HKLM:\\{NET_FRAMEWORK_KEY}")
            if values.get("SystemDefaultTlsVersions") == 1:
                _security_protocols[runtime] = SYSTEM_DEFAULT
            elif values.get("SchUseStrongCrypto") == 1:
                _security_protocols[runtime] = TLS | TLS11 | TLS12
            else:
                _security_protocols[runtime] = SSL3 | TLS
        return _security_protocols[runtime]


def _set_security_protocol(value: object) -> None:
    runtime = host_runtime()
    protocol = enum_argument(value, "System.Net.SecurityProtocolType")
    with _protocols_lock:
        _security_protocols[runtime] = protocol


def _offered_tls_versions(profile: OsProfile, protocols: int) -> list[ssl.TLSVersion]:
    """The TLS versions, of 1.2 and 1.3, a process whose SecurityProtocol is ``protocols`` offers a server."""
    enabled = {TLS12: ssl.TLSVersion.TLSv1_2}
    if profile.supports_tls13:
        enabled[TLS13] = ssl.TLSVersion.TLSv1_3
    return [version for flag, version in enabled.items() if protocols == SYSTEM_DEFAULT or protocols & flag]


def _client_context(versions: list[ssl.TLSVersion], trusted_ca: Path) -> ssl.SSLContext:
    """A client that offers exactly ``versions`` and trusts what the host's root store holds."""
    context = ssl.create_default_context(cafile=str(trusted_ca))
    context.minimum_version, context.maximum_version = min(versions), max(versions)
    return context


class _SchannelAdapter(requests.adapters.HTTPAdapter):
    """Connections, direct or through the proxy, made with one client context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, ssl_context=self._context, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, ssl_context=self._context, **proxy_kwargs)


@dotnet_type("System.Net.ServicePointManager")
class ServicePointManager:
    @static_property(setter=_set_security_protocol)
    def SecurityProtocol() -> EnumValue:  # noqa: N802 - .NET member name
        return EnumValue(SECURITY_PROTOCOL, _security_protocol(host_runtime()))  # type: ignore[arg-type]


def web_exception(message: str, status: str, response: HttpWebResponse | None = None) -> PowerShellError:
    """A WebException with its Status (WebExceptionStatus) and, for an HTTP error, the Response."""
    return dotnet_error(
        "System.Net.WebException",
        message,
        Status=EnumValue(EXCEPTION_STATUS, EXCEPTION_STATUS.value_of(status)),  # type: ignore[arg-type,union-attr]
        Response=response,
    )


@dotnet_type("System.Net.WebRequest", base="System.MarshalByRefObject")
class WebRequest:
    @static
    def Create(requestUri: object) -> HttpWebRequest:  # noqa: N802, N803 - .NET names
        """An HttpWebRequest for an http or https URI; file and ftp URIs are not the lab's."""
        uri = requestUri if isinstance(requestUri, Uri) else Uri(to_string(requestUri))
        scheme = uri.Scheme
        if scheme in ("file", "ftp"):
            raise LabLimitation(f"The lab's WebRequest does not open {scheme} URIs.")
        if scheme not in ("http", "https"):
            raise dotnet_error("System.NotSupportedException", "The URI prefix is not recognized.")
        return HttpWebRequest(uri.AbsoluteUri)


@dotnet_type("System.Net.HttpWebRequest", base="System.Net.WebRequest")
class HttpWebRequest(WebRequest):
    """One GET, made by ``GetResponse()``."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._range: str | None = None
        self._timeout = DEFAULT_TIMEOUT
        self._read_write_timeout = DEFAULT_READ_WRITE_TIMEOUT
        self._method = "GET"

    @property
    def RequestUri(self) -> str:  # noqa: N802
        return self._url

    @property
    def Method(self) -> str:  # noqa: N802
        return self._method

    @Method.setter
    def Method(self, value: object) -> None:  # noqa: N802
        if to_string(value).upper() != "GET":
            raise LabLimitation("The lab's HttpWebRequest makes GET requests only.")
        self._method = "GET"

    @property
    def Timeout(self) -> int:  # noqa: N802
        return self._timeout

    @Timeout.setter
    def Timeout(self, value: object) -> None:  # noqa: N802
        self._timeout = int(to_integer(value, "System.Int32"))

    @property
    def ReadWriteTimeout(self) -> int:  # noqa: N802
        return self._read_write_timeout

    @ReadWriteTimeout.setter
    def ReadWriteTimeout(self, value: object) -> None:  # noqa: N802
        self._read_write_timeout = int(to_integer(value, "System.Int32"))

    def AddRange(self, range: object, to: object = None) -> None:  # noqa: N802, A002 - .NET names
        """``bytes=<from>-`` (``bytes=-<n>`` for the last n bytes), or ``bytes=<from>-<to>``."""
        start = int(to_integer(range, "System.Int64"))
        if to is not None:
            self._range = f"bytes={start}-{int(to_integer(to, 'System.Int64'))}"
        else:
            self._range = f"bytes={start}-" if start >= 0 else f"bytes={start}"

    def GetResponse(self) -> HttpWebResponse:  # noqa: N802
        runtime = host_runtime()
        runtime.check_alive()
        secure = urlsplit(self._url).scheme.casefold() == "https"
        versions = _offered_tls_versions(runtime.host.profile, _security_protocol(runtime)) if secure else []
        if secure and not versions:
            raise web_exception(SECURE_CHANNEL_FAILURE, "SecureChannelFailure")
        # HttpWebRequest sends no User-Agent, Accept or Accept-Encoding of its own.
        headers: dict[str, str | None] = {"User-Agent": SKIP_HEADER, "Accept": None, "Accept-Encoding": SKIP_HEADER}
        if self._range is not None:
            headers["Range"] = self._range
        proxy = None if _is_loopback(self._url) else runtime.host.proxy
        session = requests.Session()
        session.trust_env = False  # the host's own proxy setting only
        if secure:
            session.mount("https://", _SchannelAdapter(_client_context(versions, runtime.host.trusted_ca)))
        try:
            response = session.get(
                self._url,
                headers=headers,
                proxies={"http": proxy, "https": proxy} if proxy else {},
                stream=True,
                timeout=(self._timeout / 1000, self._read_write_timeout / 1000),
                verify=str(runtime.host.trusted_ca) if secure else True,
            )
        except requests.RequestException as error:
            session.close()
            raise _request_failure(self._url, proxy, error) from None
        answer = HttpWebResponse(self._url, session, response)
        runtime.host.log.info("GET %s%s: %d", self._url, f" ({self._range})" if self._range else "", response.status_code)
        if response.status_code >= 400:
            raise web_exception(f"The remote server returned an error: ({response.status_code}) {response.reason}.", "ProtocolError", answer)
        return answer


def _request_failure(url: str, proxy: str | None, error: requests.RequestException) -> PowerShellError:
    """The WebException .NET gives a request that got no answer."""
    if isinstance(error, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in str(error):
            return web_exception("The underlying connection was closed: Could not establish trust relationship for the SSL/TLS secure channel.", "TrustFailure")
        # No version both sides speak, or another failure of the handshake.
        return web_exception(SECURE_CHANNEL_FAILURE, "SecureChannelFailure")
    if isinstance(error, requests.Timeout):
        return web_exception("The operation has timed out", "Timeout")
    text = str(error)
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return web_exception("The underlying connection was closed: The connection was closed unexpectedly.", "ConnectionClosed")
    if "NameResolutionError" in text or "Name or service not known" in text:
        name = urlsplit(proxy or url).hostname or ""
        if proxy:
            return web_exception(f"The proxy name could not be resolved: '{name}'", "ProxyNameResolutionFailure")
        return web_exception(f"The remote name could not be resolved: '{name}'", "NameResolutionFailure")
    return web_exception("Unable to connect to the remote server", "ConnectFailure")


def _is_loopback(url: str) -> bool:
    hostname = urlsplit(url).hostname or ""
    if hostname.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


@dotnet_type("System.Net.HttpWebResponse", base="System.Net.WebResponse")
class HttpWebResponse:
    """The status line and headers of an answer, and its body as a stream."""

    def __init__(self, url: str, session: requests.Session, response: requests.Response) -> None:
        self._url = url
        self._session = session
        self._response = response
        self._stream: ConnectStream | None = None

    @property
    def StatusCode(self) -> EnumValue:  # noqa: N802
        return EnumValue(STATUS_CODE, self._response.status_code)  # type: ignore[arg-type]

    @property
    def StatusDescription(self) -> str:  # noqa: N802
        return self._response.reason or ""

    @property
    def ContentLength(self) -> int:  # noqa: N802
        return int(self._response.headers.get("Content-Length", -1))

    @property
    def ContentType(self) -> str:  # noqa: N802
        return self._response.headers.get("Content-Type", "")

    @property
    def ResponseUri(self) -> str:  # noqa: N802
        return self._response.url

    @property
    def Method(self) -> str:  # noqa: N802
        return "GET"

    def GetResponseStream(self) -> ConnectStream:  # noqa: N802
        if self._stream is None:
            self._stream = ConnectStream(self._response)
        return self._stream

    def Close(self) -> None:  # noqa: N802
        self._response.close()
        self._session.close()

    def Dispose(self) -> None:  # noqa: N802
        self.Close()


@dotnet_type("System.Net.ConnectStream", base="System.IO.Stream")
class ConnectStream(Stream):
    """The body of an answer, read as it arrives: ``CopyTo`` writes each piece before it reads the next."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response

    def read_chunk(self) -> bytes:
        self._check_open()
        try:
            return self._response.raw.read1(COPY_BUFFER_SIZE)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            raise dotnet_error("System.IO.IOException", f"Unable to read data from the transport connection: {_read_failure(error)}.") from None

    def close(self) -> None:
        super().close()
        self._response.close()

    @property
    def CanRead(self) -> bool:  # noqa: N802
        return not self._closed

    @property
    def CanSeek(self) -> bool:  # noqa: N802
        return False


def _read_failure(error: Exception) -> str:
    """Why a read of the body failed, in the words of the socket error .NET reports."""
    if isinstance(error, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return (
            "A connection attempt failed because the connected party did not properly respond after a period of time, "
            "or established connection failed because connected host has failed to respond"
        )
    if isinstance(error, ConnectionResetError) or "reset" in str(error).casefold():
        return "An existing connection was forcibly closed by the remote host"
    return "The connection was closed"
