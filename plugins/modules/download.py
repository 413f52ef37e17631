#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: download
short_description: Download the updates a Windows host may install into its Windows Update cache
version_added: 0.1.0
description:
  - Scans the host as M(wuacache.wua.scan) does, then downloads the updates the server's plan allows and the host has
    not downloaded yet, each file checked against the catalog's SHA-1, and hands them to the Windows Update Agent's
    cache (C(IUpdate2::CopyToCache)).
  - Only updates whose files are all on the server are downloaded; the server starts fetching the others once it
    has the report, see O(wait_for_files).
  - Fails when an update could not be downloaded, returning the outcome of every update.
options:
  wait_for_files:
    description:
      - How long, in seconds, to wait for the server to fetch the files of the updates to download.
      - V(0) downloads what the server has now; the others are reported as waiting, which is no failure.
    type: int
    default: 0
extends_documentation_fragment:
  - wuacache.wua._attributes
  - wuacache.wua._options
attributes:
  check_mode:
    support: full
    details:
      - Scans and reports, and returns the updates that would be downloaded, without downloading them.
  diff_mode:
    support: none
seealso:
  - module: wuacache.wua.scan
  - module: wuacache.wua.install
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Download tonight what the hosts install tomorrow
  wuacache.wua.download:
    wait_for_files: 1800
"""

RETURN = r"""
downloads:
  description: The outcome per update to download; in check mode, the updates that would be downloaded.
  returned: success
  type: list
  elements: dict
  contains:
    update_id:
      description: The C(UpdateID).
      type: str
    title:
      description: The title.
      type: str
    downloaded:
      description: Whether the update is now in the Windows Update Agent's cache.
      type: bool
    waiting:
      description: Present and true when the server does not hold all of the update's files yet.
      type: bool
    files:
      description: The outcome per file (C(name), C(status), C(size), C(transferred)).
      type: list
      elements: dict
    hresult:
      description: The HRESULT of the failure.
      type: str
      sample: "0x80246007"
    hresult_name:
      description: Its name.
      type: str
      sample: WU_E_DM_NOTDOWNLOADED
    msg:
      description: Why the update was not downloaded.
      type: str
"""
