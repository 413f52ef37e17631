# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make the checkout importable as ``ansible_collections.wuacache.wua`` for the unit tests.

Ansible only finds a collection under an ``ansible_collections/<namespace>/<name>``
path, which a plain checkout is not: link it into such a tree for the test session.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

import pytest
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_COLLECTION_ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    collections_dir = pathlib.Path(tempfile.mkdtemp(prefix="wuacache-collections-"))
    link = collections_dir / "ansible_collections" / "wuacache" / "wua"
    link.parent.mkdir(parents=True)
    link.symlink_to(_COLLECTION_ROOT, target_is_directory=True)
    _AnsibleCollectionFinder(paths=[str(collections_dir)])._install()  # pylint: disable=protected-access

    def remove() -> None:
        _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access
        link.unlink()
        shutil.rmtree(collections_dir)

    config.add_cleanup(remove)
