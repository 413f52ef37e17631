"""Every module of the installed collection is documented where users look: ``ansible-doc``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from e2e_support import BIN, ansible_environment

MODULES = sorted(path.stem for path in (Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


def test_the_collection_has_its_modules() -> None:
    assert {"scan", "download", "install", "uninstall", "package", "os_upgrade", "host_info", "cleanup"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_shows_options_examples_and_return_values(collections_path: Path, tmp_path: Path, module: str) -> None:
    name = f"wuacache.wua.{module}"
    shown = subprocess.run(
        [BIN / "ansible-doc", "--json", name],
        capture_output=True,
        text=True,
        env=ansible_environment(collections_path, tmp_path),
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)[name]
    assert entry["doc"]["short_description"]
    assert entry["doc"]["description"]
    assert entry["examples"].strip()
    assert entry["return"]
    assert entry["doc"]["module"] == module
