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
  - Removes the update of the KB from the host, then scans and reports to the wuacache server, so that the server
    learns the new state.
  - A cumulative update is removed with DISM (C(Remove-WindowsPackage -Online -NoRestart)). Its servicing package,
    C(Package_for_RollupFix~...), is the installed one whose description or support information names the KB
    (C(Get-WindowsPackage -Online)). Microsoft documents that C(wusa.exe /uninstall) does not work on the combined
    packages that carry the cumulative update with the servicing stack update (Windows 10 21H2 and later, Windows 11,
    Windows Server 2022 and later), and that the cumulative update's own package is removed with DISM; the servicing
    stack update stays, as it cannot be removed. A failure of DISM fails the task, naming its HRESULT.
  - Any other KB is removed by C(wusa.exe /uninstall /kb:<kb> /quiet /norestart). An update that is not installed
    is no change. Any other exit code of C(wusa.exe) than success, success waiting for a restart (3010) or not
    installed fails the task, naming it.
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
method:
  description: How the update was removed.
  returned: success, except in check mode
  type: str
  choices: [wusa, dism]
package_name:
  description: The servicing package DISM removed; V(null) when C(wusa.exe) removed the update.
  returned: success, except in check mode
  type: str
  sample: Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2227.1.10
exit_code:
  description: The exit code of C(wusa.exe); V(null) when DISM removed the package.
  returned: success, except in check mode
  type: int
  sample: 3010
rebooted:
  description: Whether the host was restarted.
  returned: success, except in check mode
  type: bool
"""
