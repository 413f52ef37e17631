"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

# The ansible commands the tests run are those of the environment that runs them.
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def ansible_environment(collections_path: Path, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of an Ansible run that finds the installed collection and nothing of the user's."""
    return dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        **settings,
    )


def install_collection(collections_path: Path) -> None:
    """Build the collection and install it into ``collections_path``, as users do."""
    subprocess.run(
        [REPO / "scripts" / "install-collection", collections_path, BIN / "ansible-galaxy"], check=True, capture_output=True
    )


def ansible_core_version() -> str:
    """The version of the ansible-core whose ansible-playbook :func:`run_playbook` runs."""
    shown = subprocess.run([BIN / "ansible-playbook", "--version"], capture_output=True, text=True, check=True)
    # Its first line reads "ansible-playbook [core 2.19.15]".
    return re.match(r"ansible-playbook \[core ([^\]]+)\]", shown.stdout).group(1)


def lab(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``lab`` command on the lab in ``state_dir``."""
    return subprocess.run([BIN / "lab", "--state-dir", str(state_dir), *args], capture_output=True, text=True, check=False)


def run_playbook(
    collections_path: Path, inventory: Path, tmp_path: Path, playbook: str | Path, *extra: str
) -> tuple[int, dict[str, dict], str]:
    """Run ansible-playbook; returns its exit code, each host's last task
    result (as written by Ansible's ``tree`` callback) and its output."""
    tree = tmp_path / "tree"
    for stale in tree.glob("*"):
        stale.unlink()
    env = ansible_environment(
        collections_path,
        tmp_path,
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
        ANSIBLE_CALLBACK_TREE_DIR=str(tree),
    )
    completed = subprocess.run(
        [BIN / "ansible-playbook", "-i", str(inventory), str(playbook), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    results = {path.name: json.loads(path.read_text()) for path in tree.glob("*")}
    return completed.returncode, results, completed.stdout + completed.stderr
