"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def ansible_environment(collections_path: Path, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of an Ansible run that finds the installed collection and nothing of the user's."""
    return dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        **settings,
    )
