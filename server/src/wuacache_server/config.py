"""Settings of the wuacache server.

Values come, highest priority first, from arguments given in code, from
``WUACACHE_*`` environment variables (``__`` separates nested keys, as in
``WUACACHE_CAB_SYNC_SCHEDULE__AT=04:00``), from one TOML file, and from the
defaults below. The file is ``--config PATH``, else ``$WUACACHE_CONFIG``, else
``<data_dir>/server.toml`` when it exists.

Nothing is read at import time: the CLI and the app call :func:`load_settings`
and pass the result on.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import textwrap
import tomllib
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from wuacache_server import policy
from wuacache_server.fetch.allowlist import validate_allowlist

CONFIG_FILE_NAME = "server.toml"
DEFAULT_REPORT_HISTORY = 100
DEFAULT_UPSTREAM_CAB_URL = "http://download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab"
# The hosts Microsoft serves the catalog and update files from (WAPT's list, plus
# the delivery network newer FileLocation URLs point at).
DEFAULT_UPSTREAM_ALLOWLIST = (
    "windowsupdate.com",
    "download.windowsupdate.com",
    "*.download.windowsupdate.com",
    "download.microsoft.com",
    "*.update.microsoft.com",
    "dl.delivery.mp.microsoft.com",
    "*.delivery.mp.microsoft.com",
    "go.microsoft.com",
)


class ConfigError(Exception):
    """Settings that cannot be used; the message tells the operator what to fix."""


def default_data_dir() -> Path:
    """``$STATE_DIRECTORY`` as systemd's ``StateDirectory=`` sets it, else ``/var/lib/wuacache``."""
    # systemd separates several state directories with colons; ours is the first.
    state_directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state_directory) if state_directory else Path("/var/lib/wuacache")


_DURATION = re.compile(r"(\d+)\s*([smhd]?)", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _parse_duration(value: Any) -> Any:
    """Read ``600`` (seconds), ``90s``, ``30m``, ``12h``, ``7d``; anything else
    is left to pydantic (an ISO 8601 duration such as ``PT30M``, say)."""
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[(match[2] or "s").lower()])
    return value


def format_duration(value: timedelta) -> str:
    """The shortest ``<n><unit>`` spelling of a whole number of seconds."""
    seconds = int(value.total_seconds())
    for unit, unit_seconds in _UNIT_SECONDS.items():
        if seconds and seconds % unit_seconds == 0:
            return f"{seconds // unit_seconds}{unit}"
    return f"{seconds}s"


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("give a time of day without a UTC offset: schedules follow the server's local time")
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), PlainSerializer(format_duration, return_type=str)]
ClockTime = Annotated[
    time, AfterValidator(_local_time), PlainSerializer(lambda value: value.isoformat("minutes"), return_type=str)
]


class DailySchedule(BaseModel):
    """Once a day at ``at`` (server local time), plus a random delay of up to
    ``random_delay`` drawn afresh each day, so that servers do not all call
    Microsoft at the same second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: ClockTime = time(3, 0)
    random_delay: Duration = Field(default=timedelta(minutes=30), ge=timedelta(0), lt=timedelta(days=1))

    def next_run(self, after: datetime, rng: random.Random | None = None) -> datetime:
        """The first run strictly after ``after``, in ``after``'s time zone."""
        start = datetime.combine(after.date(), self.at, tzinfo=after.tzinfo)
        if start <= after:
            start += timedelta(days=1)
        delay = (rng or random).uniform(0, self.random_delay.total_seconds())
        return start + timedelta(seconds=delay)


class TimeWindow(BaseModel):
    """A daily window written ``HH:MM-HH:MM`` (server local time); it may span midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: ClockTime
    end: ClockTime

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            start, separator, end = value.partition("-")
            if not separator:
                raise ValueError(f"{value!r} is not a window such as '02:30-03:30'")
            return {"start": start.strip(), "end": end.strip()}
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError("the window is empty: its start and end are the same time")
        return self

    @model_serializer
    def _as_text(self) -> str:
        return f"{self.start.isoformat('minutes')}-{self.end.isoformat('minutes')}"

    def contains(self, moment: time) -> bool:
        """Whether ``moment`` falls inside the window (start included, end excluded)."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def split_host_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` into its host and port."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT, such as 127.0.0.1:8088 or [::1]:8088")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{address!r}: put an IPv6 address in brackets, such as [::1]:8088")
    if not 0 < int(port) < 65536:
        raise ValueError(f"{address!r}: the port must be between 1 and 65535")
    return host, int(port)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _base_url(value: str) -> str:
    return _http_url(value).rstrip("/")


def _default_base_url(data: dict[str, Any]) -> str:
    host, port = split_host_port(data["listen"])
    if host in ("0.0.0.0", "::"):  # listening everywhere: hosts need a real name
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if data.get("tls_cert") else "http"
    return f"{scheme}://{host}:{port}"




def _split_commas(value: Any) -> Any:
    """Environment variables give lists as comma-separated strings."""
    return [entry for entry in value.split(",") if entry.strip()] if isinstance(value, str) else value


class Settings(BaseSettings):
    """Everything that varies from one wuacache server to another."""

    model_config = SettingsConfigDict(env_prefix="WUACACHE_", env_nested_delimiter="__", extra="forbid")

    config: Path | None = Field(
        default=None,
        description="The TOML file these settings were read from (environment: WUACACHE_CONFIG).",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder of the server's state: the SQLite database, this file, the repository.",
    )
    repository_dir: Path = Field(
        default_factory=lambda data: data["data_dir"] / "repository",
        description="Folder of the files the server keeps; hosts download from its wua/ and packages/ subfolders.",
    )
    database_url: str = Field(
        default_factory=lambda data: f"sqlite:///{data['data_dir'] / 'wuacache.db'}",
        description="SQLAlchemy URL of the database: sqlite:///PATH (the default, under data_dir) "
        "or postgresql://USER:PASSWORD@HOST/NAME.",
    )
    upstream_cab_url: Annotated[str, AfterValidator(_http_url)] = Field(
        default=DEFAULT_UPSTREAM_CAB_URL,
        description="Where Microsoft publishes the offline catalog wsusscn2.cab.",
    )
    upstream_allowlist: Annotated[list[str], NoDecode, BeforeValidator(_split_commas)] = Field(
        default=list(DEFAULT_UPSTREAM_ALLOWLIST),
        description="The only hosts the server downloads from: exact names, or *.domain for its "
        "subdomains (environment: comma-separated).",
    )
    http_proxy: Annotated[str, AfterValidator(_http_url)] | None = Field(
        default=None,
        description="HTTP proxy for every request to Microsoft.",
        examples=["http://proxy.example.com:3128"],
    )
    cab_sync_schedule: DailySchedule = Field(
        default=DailySchedule(),
        description="When the catalog is refreshed each day (local time), and the random delay added to it.",
    )
    fetch_interval: Duration = Field(
        default=timedelta(minutes=30),
        gt=timedelta(0),
        description="How often the files hosts need are fetched, besides right after a report brings a new need.",
    )
    fetch_concurrency: int = Field(default=4, ge=1, le=32, description="Downloads running at the same time.")
    fetch_retries: int = Field(default=3, ge=0, le=20, description="Further attempts after a failed download.")
    cleanup_kbs: bool = Field(default=True, description="Delete stored update files that no host needs any more.")
    cleanup_window: Annotated[TimeWindow, NoDecode] = Field(
        default=TimeWindow(start=time(2, 30), end=time(3, 30)),
        description="When, each night (local time), the cleanup runs.",
    )
    listen: str = Field(default="127.0.0.1:8088", description="Address and port the HTTP(S) server listens on.")
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) for HTTPS; needs tls_key.",
        examples=["/etc/wuacache/tls/server.crt"],
    )
    tls_key: Path | None = Field(
        default=None, description="PEM private key of tls_cert.", examples=["/etc/wuacache/tls/server.key"]
    )
    cab_ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of the code-signing roots the catalog's signature must chain to "
        "(Microsoft's). Required to sync the catalog: there is no default.",
        examples=["/etc/wuacache/microsoft-code-signing-roots.pem"],
    )
    report_history: int = Field(
        default=DEFAULT_REPORT_HISTORY,
        ge=1,
        le=100_000,
        description="Reports kept per host in its history; older ones are deleted as new ones arrive.",
    )
    max_report_bytes: ByteSize = Field(
        default=ByteSize(16 * 1024 * 1024),
        ge=1024,
        description="Largest request body the API accepts, in bytes (a host's report is the largest).",
    )
    max_package_bytes: ByteSize = Field(
        default=ByteSize(8 * 1024**3),
        ge=1,
        description="Largest package (.msu or .cab) an admin may upload, in bytes.",
    )
    default_assignment: dict[str, Any] = Field(
        default={},
        description="The assignment of hosts no controller has set one for: rule_sets, default_allow, "
        "allowed_severities, install_delay, maturities (see docs/server.md). By default nothing is allowed.",
        examples=[{"rule_sets": ["baseline"], "install_delay": "7d"}],
    )
    host_token_lifetime: Duration = Field(
        default=timedelta(days=90),
        ge=timedelta(minutes=1),
        le=timedelta(days=3650),
        description="How long a host token lives when its creator gives no expiry.",
    )
    base_url: Annotated[str, AfterValidator(_base_url)] = Field(
        default_factory=_default_base_url,
        description="URL hosts reach this server at (default: derived from listen and the TLS settings).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Which file to read is itself a setting (config, or data_dir for the
        # default location): look at the stronger sources first.
        given = {**env_settings(), **init_settings()}
        file_values = read_config_file(_config_path(given))
        return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=file_values)

    @field_validator("upstream_allowlist")
    @classmethod
    def _check_allowlist(cls, patterns: list[str]) -> list[str]:
        if not patterns:
            raise ValueError("the allowlist is empty: the server could download nothing")
        return list(validate_allowlist([pattern.strip() for pattern in patterns]))

    @field_validator("default_assignment")
    @classmethod
    def _check_default_assignment(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            policy.Assignment.from_dict(value)
        except policy.PolicyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, listen: str) -> str:
        split_host_port(listen)
        return listen

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both for HTTPS, or neither for HTTP")
        return self

    @property
    def listen_host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return split_host_port(self.listen)[1]

    @property
    def wua_dir(self) -> Path:
        """Where the catalog and update files are published for hosts."""
        return self.repository_dir / "wua"

    @property
    def packages_dir(self) -> Path:
        """Where the packages admins upload are published for hosts."""
        return self.repository_dir / "packages"


def _config_path(given: dict[str, Any]) -> Path | None:
    if given.get("config"):
        path = Path(given["config"])
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    default = Path(given.get("data_dir") or default_data_dir()) / CONFIG_FILE_NAME
    return default if default.is_file() else None


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The settings a TOML file gives, plus ``config``: the file they came from."""
    if path is None:
        return {}
    try:
        with path.open("rb") as stream:
            values = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if "config" in values:
        raise ConfigError(f"config file {path}: 'config' cannot be set from a config file")
    return {**values, "config": path}


def load_settings(config: Path | None = None) -> Settings:
    """Build the settings, or raise :class:`ConfigError` saying what is wrong."""
    try:
        return Settings(config=config) if config else Settings()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        if error["type"] == "default_factory_not_called":  # a consequence of another error
            continue
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "invalid settings: " + "; ".join(problems)


def config_template(settings: Settings) -> str:
    """A ``server.toml`` documenting every setting, each commented out at its value in ``settings``."""
    values = settings.model_dump(mode="json")
    lines = [
        "# wuacache server settings. Uncomment and change what you need.",
        "# Environment variables WUACACHE_<NAME> override this file; nested",
        "# values use WUACACHE_<NAME>__<KEY>, e.g. WUACACHE_CAB_SYNC_SCHEDULE__AT.",
    ]
    for name, field in Settings.model_fields.items():
        if name == "config":
            continue
        value = values[name] if values[name] is not None else (field.examples or [None])[0]
        lines.append("")
        lines.extend(f"# {line}" for line in textwrap.wrap(field.description or "", 76))
        lines.append(f"# {name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    # JSON strings, numbers, booleans and arrays are valid TOML; tables are not.
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    return json.dumps(value)
