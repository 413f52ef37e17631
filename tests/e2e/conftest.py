"""End-to-end fixtures: a real lab (separate processes, real sockets) and the
collection built and installed the way users install it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_support import install_collection, lab, run_playbook

from wuacache_lab.labspec import LabSpec

# Away from 127.0.1.x, where `make demo` puts its hosts.
E2E_BASE_ADDRESS = "127.0.3.1"


@pytest.fixture(scope="session")
def lab_spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSpec]:
    state_dir = tmp_path_factory.mktemp("lab")
    started = lab(state_dir, "up", "--hosts", "3", "--profile", "mixed", "--base-address", E2E_BASE_ADDRESS, "--updates", "80")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield LabSpec.load(state_dir)
    finally:
        stopped = lab(state_dir, "down")
        assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("collections")
    install_collection(path)
    return path


@pytest.fixture
def ansible_playbook(collections_path: Path, lab_spec: LabSpec, tmp_path: Path):
    """Run ansible-playbook against the lab (see :func:`e2e_support.run_playbook`)."""

    def run(playbook: str | Path, *extra: str) -> tuple[int, dict[str, dict], str]:
        return run_playbook(collections_path, lab_spec.inventory_file, tmp_path, playbook, *extra)

    return run
