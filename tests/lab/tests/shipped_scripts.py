"""The collection's host scripts as a commit of this repository shipped them.

A fix of the scripts comes with a lab test, and that test must catch the
defect it is for: :func:`before_and_after` runs it twice, with the scripts of
the working tree and with those of the commit before the fix, taken from git.
The second run must fail (a strict ``xfail``: should it pass, the test proves
nothing and the suite fails).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
SCRIPTS_FOLDER = "plugins/plugin_utils"
SCRIPT_NAMES = ("_wua_bootstrap.ps1", "_wua_task.ps1", "_wua_bridge.ps1")


def write_scripts_at(commit: str, destination: Path) -> Path:
    """Write the host scripts of ``commit`` into ``destination`` and return it."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in SCRIPT_NAMES:
        shown = subprocess.run(
            ["git", "-C", str(REPOSITORY), "show", f"{commit}:{SCRIPTS_FOLDER}/{name}"],
            capture_output=True,
            check=False,
        )
        if shown.returncode != 0:
            # A shallow clone lacks the history: that is an error of the checkout, not the expected failure.
            raise RuntimeError(f"git cannot show {name} at {commit}: {shown.stderr.decode(errors='replace').strip()}")
        (destination / name).write_bytes(shown.stdout)
    return destination


def before_and_after(commit_before_fix: str, defect: str) -> pytest.MarkDecorator:
    """Run a test with today's scripts, and with those of ``commit_before_fix``, where it must fail."""
    return pytest.mark.parametrize(
        "shipped_scripts",
        [
            pytest.param(None, id="fixed"),
            pytest.param(
                commit_before_fix,
                id=f"before-{commit_before_fix[:10]}",
                # Only a failed assertion is the defect showing; anything else is a broken test.
                marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=defect),
            ),
        ],
        indirect=True,
    )
