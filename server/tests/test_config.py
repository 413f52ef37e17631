from __future__ import annotations

import random
import re
import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from wuacache_server.config import (
    DEFAULT_UPSTREAM_ALLOWLIST,
    DEFAULT_UPSTREAM_CAB_URL,
    ConfigError,
    DailySchedule,
    Settings,
    TimeWindow,
    config_template,
    load_settings,
)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_follow_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/srv/wuacache:/srv/other")
    settings = load_settings()
    assert settings.data_dir == Path("/srv/wuacache")
    assert settings.repository_dir == Path("/srv/wuacache/repository")
    assert settings.wua_dir == Path("/srv/wuacache/repository/wua")
    assert settings.database_url == "sqlite:////srv/wuacache/wuacache.db"
    assert settings.config is None


def test_defaults_without_systemd() -> None:
    settings = load_settings()
    assert settings.data_dir == Path("/var/lib/wuacache")
    assert settings.upstream_cab_url == DEFAULT_UPSTREAM_CAB_URL
    assert settings.upstream_allowlist == list(DEFAULT_UPSTREAM_ALLOWLIST)
    assert settings.http_proxy is None
    assert settings.cab_sync_schedule == DailySchedule(at=time(3, 0), random_delay=timedelta(minutes=30))
    assert settings.fetch_interval == timedelta(minutes=30)
    assert (settings.fetch_concurrency, settings.fetch_retries) == (4, 3)
    assert settings.cleanup_kbs is True
    assert settings.cleanup_window == TimeWindow(start=time(2, 30), end=time(3, 30))
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8088)
    assert settings.base_url == "http://127.0.0.1:8088"
    assert settings.cab_ca_bundle is None
    assert settings.max_report_bytes == 16 * 1024 * 1024


def test_environment_beats_file_beats_defaults(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(
        data_dir / "server.toml",
        'listen = "127.0.0.1:9000"\nfetch_concurrency = 8\n'
        'cab_sync_schedule = { at = "04:00", random_delay = "10m" }\n',
    )
    monkeypatch.setenv("WUACACHE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("WUACACHE_LISTEN", "127.0.0.2:9001")
    monkeypatch.setenv("WUACACHE_CAB_SYNC_SCHEDULE__AT", "05:15")

    settings = load_settings()

    assert settings.config == data_dir / "server.toml"
    assert settings.listen == "127.0.0.2:9001"  # environment over file
    assert settings.fetch_concurrency == 8  # file over default
    assert settings.fetch_retries == 3  # default
    # Nested values merge key by key.
    assert settings.cab_sync_schedule == DailySchedule(at=time(5, 15), random_delay=timedelta(minutes=10))
    assert settings.base_url == "http://127.0.0.2:9001"


def test_the_default_config_file_is_optional(data_dir: Path) -> None:
    assert Settings(data_dir=data_dir).config is None


def test_an_explicit_config_file_beats_the_environment_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from_environment = write_config(tmp_path / "env.toml", "fetch_retries = 5\nfetch_concurrency = 2\n")
    explicit = write_config(tmp_path / "cli.toml", "fetch_retries = 7\n")
    monkeypatch.setenv("WUACACHE_CONFIG", str(from_environment))

    assert load_settings().fetch_retries == 5
    settings = load_settings(explicit)
    assert settings.config == explicit
    assert (settings.fetch_retries, settings.fetch_concurrency) == (7, 4)


def test_environment_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUACACHE_UPSTREAM_ALLOWLIST", "Mirror.Example.com, *.cdn.example.com")
    monkeypatch.setenv("WUACACHE_CLEANUP_WINDOW", "23:30-00:30")
    monkeypatch.setenv("WUACACHE_FETCH_INTERVAL", "2h")
    monkeypatch.setenv("WUACACHE_MAX_REPORT_BYTES", "2MiB")
    monkeypatch.setenv("WUACACHE_CLEANUP_KBS", "false")
    monkeypatch.setenv("WUACACHE_LISTEN", "[::1]:8443")
    monkeypatch.setenv("WUACACHE_TLS_CERT", "/etc/wuacache/tls.pem")
    monkeypatch.setenv("WUACACHE_TLS_KEY", "/etc/wuacache/tls.key")

    settings = load_settings()

    assert settings.upstream_allowlist == ["mirror.example.com", "*.cdn.example.com"]
    assert settings.cleanup_window == TimeWindow(start=time(23, 30), end=time(0, 30))
    assert settings.fetch_interval == timedelta(hours=2)
    assert settings.max_report_bytes == 2 * 1024 * 1024
    assert settings.cleanup_kbs is False
    assert (settings.listen_host, settings.listen_port) == ("::1", 8443)
    assert settings.base_url == "https://[::1]:8443"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("7d", timedelta(days=7)),
        ("PT45M", timedelta(minutes=45)),
        ("600", timedelta(minutes=10)),
    ],
)
def test_durations(monkeypatch: pytest.MonkeyPatch, value: str, expected: timedelta) -> None:
    monkeypatch.setenv("WUACACHE_FETCH_INTERVAL", value)
    assert load_settings().fetch_interval == expected


def test_base_url_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUACACHE_LISTEN", "0.0.0.0:8088")
    monkeypatch.setenv("WUACACHE_BASE_URL", "https://wuacache.example.com/")
    assert load_settings().base_url == "https://wuacache.example.com"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WUACACHE_TLS_CERT", "/etc/wuacache/tls.pem", "tls_cert and tls_key go together"),
        ("WUACACHE_CLEANUP_WINDOW", "02:30", "cleanup_window: '02:30' is not a window"),
        ("WUACACHE_CLEANUP_WINDOW", "02:30-02:30", "cleanup_window: the window is empty"),
        ("WUACACHE_CLEANUP_WINDOW", "02:30-27:00", "cleanup_window.end"),
        ("WUACACHE_CAB_SYNC_SCHEDULE__AT", "25:00", "cab_sync_schedule.at"),
        ("WUACACHE_CAB_SYNC_SCHEDULE__AT", "03:00+02:00", "without a UTC offset"),
        ("WUACACHE_CAB_SYNC_SCHEDULE__RANDOM_DELAY", "2d", "cab_sync_schedule.random_delay"),
        ("WUACACHE_LISTEN", "localhost", "is not HOST:PORT"),
        ("WUACACHE_LISTEN", "::1:8088", "put an IPv6 address in brackets"),
        ("WUACACHE_LISTEN", "127.0.0.1:70000", "between 1 and 65535"),
        ("WUACACHE_UPSTREAM_ALLOWLIST", "https://download.microsoft.com", "is not a valid host name"),
        ("WUACACHE_UPSTREAM_ALLOWLIST", "", "the allowlist is empty"),
        ("WUACACHE_UPSTREAM_CAB_URL", "ftp://example.com/wsusscn2.cab", "is not an http:// or https:// URL"),
        ("WUACACHE_HTTP_PROXY", "proxy:3128", "http_proxy"),
        ("WUACACHE_FETCH_CONCURRENCY", "0", "fetch_concurrency"),
        ("WUACACHE_FETCH_INTERVAL", "0s", "fetch_interval"),
        ("WUACACHE_MAX_REPORT_BYTES", "12", "max_report_bytes"),
        ("WUACACHE_CAB_SYNC_SCHEDULE", "{not json", "cab_sync_schedule"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fetch_concurency = 8\n", "fetch_concurency: Extra inputs are not permitted"),
        ("listen = \n", "server.toml: "),
        ('config = "/elsewhere.toml"\n', "'config' cannot be set from a config file"),
    ],
)
def test_bad_config_files_are_refused(monkeypatch: pytest.MonkeyPatch, data_dir: Path, text: str, message: str) -> None:
    write_config(data_dir / "server.toml", text)
    monkeypatch.setenv("WUACACHE_DATA_DIR", str(data_dir))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings()


def test_a_missing_explicit_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_the_template_documents_every_setting_at_its_value(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, listen="127.0.0.1:9999", fetch_retries=6)
    template = config_template(settings)

    assert tomllib.loads(template) == {}  # everything commented out
    uncommented = re.sub(r"^# (\w+ = )", r"\1", template, flags=re.MULTILINE)
    values = tomllib.loads(uncommented)
    assert set(values) == set(Settings.model_fields) - {"config"}

    config_file = write_config(data_dir / "uncommented.toml", uncommented)
    reloaded = load_settings(config_file)
    optional = {"http_proxy", "tls_cert", "tls_key", "cab_ca_bundle"}  # shown with examples
    assert reloaded.model_dump(exclude={"config", *optional}) == settings.model_dump(exclude={"config", *optional})
    assert reloaded.tls_cert is not None and reloaded.cab_ca_bundle is not None


def test_the_daily_schedule_adds_a_random_delay() -> None:
    schedule = DailySchedule(at=time(3, 0), random_delay=timedelta(minutes=30))
    before = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)

    runs = {schedule.next_run(before, random.Random(seed)) for seed in range(5)}

    assert len(runs) > 1  # randomised
    for run in runs:
        assert datetime(2025, 3, 10, 3, 0, tzinfo=UTC) <= run <= datetime(2025, 3, 10, 3, 30, tzinfo=UTC)


def test_the_daily_schedule_moves_to_the_next_day_once_its_time_has_passed() -> None:
    schedule = DailySchedule(at=time(3, 0), random_delay=timedelta(0))
    assert schedule.next_run(datetime(2025, 3, 10, 3, 0, tzinfo=UTC)) == datetime(2025, 3, 11, 3, 0, tzinfo=UTC)
    assert schedule.next_run(datetime(2025, 3, 10, 2, 59, tzinfo=UTC)) == datetime(2025, 3, 10, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        ("02:30-03:30", [time(2, 30), time(3, 29)], [time(2, 29), time(3, 30), time(12, 0)]),
        ("23:00-01:00", [time(23, 0), time(0, 0), time(0, 59)], [time(1, 0), time(22, 59), time(12, 0)]),
    ],
)
def test_time_windows(window: str, inside: list[time], outside: list[time]) -> None:
    parsed = TimeWindow.model_validate(window)
    assert all(parsed.contains(moment) for moment in inside)
    assert not any(parsed.contains(moment) for moment in outside)
