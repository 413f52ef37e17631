"""The end-to-end tests run on an ansible-core the collection supports: the
newest in the project's environment, the oldest in `make pytest-oldest-ansible`'s."""

from __future__ import annotations

import os

import pytest
import yaml
from e2e_support import REPO, ansible_core_version
from packaging.specifiers import SpecifierSet


@pytest.mark.oldest_ansible
def test_ansible_playbook_is_an_ansible_core_the_collection_supports() -> None:
    version = ansible_core_version()
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    assert SpecifierSet(runtime["requires_ansible"]).contains(version, prereleases=True), version
    # Set by the targets that run the tests on one ansible-core release in particular.
    expected = os.environ.get("WUACACHE_EXPECT_ANSIBLE_CORE")
    if expected is not None:
        assert version.startswith(f"{expected}."), f"ran ansible-core {version}, not {expected}"
