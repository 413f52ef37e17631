#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: uninstall
short_description: Uninstall an update from a Windows host by its KB
version_added: 0.1.0
description:
  - Runs C(wusa.exe /uninstall /kb:<kb> /quiet /norestart) on the host, then scans and reports to the wuacache
    server, so that the server learns the new state.
  - An update that is not installed is no change. Any other exit code of C(wusa.exe) than success, success waiting
    for a restart (3010) or not installed fails the task, naming it.
notes:
  - Microsoft documents that C(wusa.exe /uninstall) cannot remove the cumulative updates that carry the servicing
    stack update in the same package (Windows 10 21H2 and later, Windows 11, Windows Server 2022 and later);
    C(wusa.exe) then fails and the task names its exit code. Those are removed with C(DISM /Online /Remove-Package)
    and the name of the cumulative update's own package.
options:
  kb:
    description:
      - The KB of the update, such as V(KB5034441) or V(5034441).
    type: str
    required: true
  reboot:
    description:
      - Whether to restart the host when the uninstall requires it.
    type: bool
    default: false
  reboot_timeout:
    description:
      - How long, in seconds, to wait for the host to come back from a restart and finish starting up.
    type: int
    default: 1200
extends_documentation_fragment:
  - wuacache.wua._attributes
  - wuacache.wua._options
attributes:
  check_mode:
    support: full
    details:
      - Scans and reports, and reports a change when the KB is installed, without uninstalling it.
  diff_mode:
    support: none
seealso:
  - module: wuacache.wua.install
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Remove a cumulative update that broke an application
  wuacache.wua.uninstall:
    kb: KB5034441
    reboot: true
"""

RETURN = r"""
kb:
  description: The KB, as C(KB<digits>).
  returned: always
  type: str
  sample: KB5034441
exit_code:
  description: The exit code of C(wusa.exe).
  returned: success, except in check mode
  type: int
  sample: 3010
rebooted:
  description: Whether the host was restarted.
  returned: success, except in check mode
  type: bool
"""
