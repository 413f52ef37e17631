from __future__ import annotations

import pytest

from wuacache_server.fetch.allowlist import UrlNotAllowed, ensure_allowed, is_allowed, validate_allowlist

ALLOWLIST = ["download.windowsupdate.com", "*.update.microsoft.com", "bücher.example"]
FULLWIDTH_DOWNLOAD = "download".translate({code: code + 0xFEE0 for code in range(0x21, 0x7F)})
PAYLOAD_PATH = "/c/msdownload/update/software/secu/2024/01/windows10.0-kb5034122-x64_0123.cab"


@pytest.mark.parametrize(
    "url",
    [
        f"http://download.windowsupdate.com{PAYLOAD_PATH}",
        f"https://download.windowsupdate.com{PAYLOAD_PATH}",
        f"HTTP://Download.WindowsUpdate.COM{PAYLOAD_PATH}",
        f"http://download.windowsupdate.com:8080{PAYLOAD_PATH}",
        f"http://download.windowsupdate.com.{PAYLOAD_PATH}",
        "http://fe2.update.microsoft.com/v6/",
        "http://a.b.update.microsoft.com/v6/",
        "http://xn--bcher-kva.example/file.cab",
        "http://BÜCHER.example/file.cab",
        # Full-width letters: requests connects to their IDNA mapping.
        f"http://{FULLWIDTH_DOWNLOAD}.windowsupdate.com{PAYLOAD_PATH}",
    ],
)
def test_allowlisted_hosts_are_allowed(url: str) -> None:
    assert is_allowed(url, ALLOWLIST)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://download.windowsupdate.com/x.cab", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("download.windowsupdate.com/x.cab", "scheme"),
        ("http://update.microsoft.com/x.cab", "not on the allowlist"),  # a wildcard is strictly below
        ("http://evildownload.windowsupdate.com/x.cab", "not on the allowlist"),
        ("http://download.windowsupdate.com.evil.example/x.cab", "not on the allowlist"),
        ("http://fakeupdate.microsoft.com/x.cab", "not on the allowlist"),
        ("http://user:pw@download.windowsupdate.com/x.cab", "credentials"),
        ("http://evil.example@download.windowsupdate.com/x.cab", "credentials"),
        ("http://evil.example\\@download.windowsupdate.com/x.cab", "backslashes"),
        ("http://download.windowsupdate.com\\.evil.example/x.cab", "backslashes"),
        ("http://download.windows\nupdate.com/x.cab", "whitespace"),
        ("http://download.windowsupdate.com\t/x.cab", "whitespace"),
        ("http://127.0.0.1/x.cab", "IP address"),
        ("http://[::1]/x.cab", "IP address"),
        ("http://127.1/x.cab", "IP address"),
        ("http://2130706433/x.cab", "IP address"),
        ("http://0x7f.0x1/x.cab", "IP address"),
        ("http://download.windowsupdate.com:99999/x.cab", "malformed"),
        ("http://download.windowsupdate.com:0/x.cab", "port 0"),
        ("http:///x.cab", "no host"),
        ("http://download%2ewindowsupdate.com/x.cab", "not a valid host name"),
        ("http://under_score.update.microsoft.com/x.cab", "not a valid host name"),
    ],
)
def test_other_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    assert not is_allowed(url, ALLOWLIST)
    with pytest.raises(UrlNotAllowed) as raised:
        ensure_allowed(url, ALLOWLIST)
    assert raised.value.url == url
    assert reason in raised.value.reason


def test_an_empty_allowlist_allows_nothing() -> None:
    assert not is_allowed(f"http://download.windowsupdate.com{PAYLOAD_PATH}", [])


def test_entries_are_normalised() -> None:
    assert validate_allowlist(["Download.WindowsUpdate.com.", "*.Update.Microsoft.com", "bücher.example"]) == (
        "download.windowsupdate.com",
        "*.update.microsoft.com",
        "xn--bcher-kva.example",
    )


@pytest.mark.parametrize(
    "entry",
    [
        "http://download.windowsupdate.com",
        "*",
        "*.com",
        "download.*.com",
        "*download.windowsupdate.com",
        "10.0.0.1",
        "",
    ],
)
def test_a_malformed_allowlist_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry"):
        validate_allowlist([entry])
    with pytest.raises(ValueError, match="allowlist entry"):
        is_allowed("http://download.windowsupdate.com/x.cab", ["download.windowsupdate.com", entry])


def test_a_single_string_is_not_taken_for_a_list_of_hosts() -> None:
    with pytest.raises(ValueError, match="not one string"):
        is_allowed("http://d/x.cab", "download.windowsupdate.com")  # type: ignore[arg-type]
