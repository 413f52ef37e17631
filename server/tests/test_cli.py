from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path


def console_script() -> Path:
    return Path(sys.executable).parent / "wuacache-server"


def test_console_script_reports_the_installed_version() -> None:
    completed = subprocess.run([console_script(), "--version"], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == f"wuacache-server {version('wuacache-server')}"


def test_unknown_option_is_refused_with_usage() -> None:
    completed = subprocess.run([console_script(), "--no-such-option"], capture_output=True, text=True)
    assert completed.returncode == 2
    assert "usage: wuacache-server" in completed.stderr
