#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: os_upgrade
short_description: Upgrade Windows in place with the setup.exe of an installation ISO
version_added: 0.1.0
description:
  - Runs the C(setup.exe) of a Windows installation ISO's content on the host, as SYSTEM, for an unattended in-place
    upgrade that keeps applications and data
    (C(/auto upgrade /quiet /eula accept /noreboot /dynamicupdate disable /compat ignorewarning /showoobe none
    /telemetry disable), then O(extra_arguments)). On failure, Setup copies its logs to
    C(%ProgramData%\wuacache\logs\os_upgrade) on the host.
  - C(setup.exe) only runs the first (down-level) phase; the upgrade goes on through several restarts. With O(reboot),
    the action restarts the host, waits until it answers again, and compares the OS build with the one before.
    An unchanged build means that Setup rolled back, which fails the task. After the restart, it scans and reports to
    the wuacache server, since the updates that apply change with the OS.
  - A Setup exit code that Microsoft documents as a block (an incompatible application, requirements not met, not
    enough disk space) fails the task, naming it, without restarting.
  - With C(/compat scanonly) in O(extra_arguments), Setup only checks compatibility; a check that finds no issue is
    no change.
options:
  setup_path:
    description:
      - The full path of C(setup.exe) at the root of the content of a Windows installation ISO, such as
        V(D:\\setup.exe) for a mounted ISO or V(\\\\fileserver\\iso\\ws2025\\setup.exe).
      - It runs as the SYSTEM account, which reaches a share as the host's computer account, which must be allowed
        to read it.
    type: str
    required: true
  extra_arguments:
    description:
      - More switches of Windows Setup, one token per element, added after the action's own, such as
        V([/migratedrivers, all]) or V([/compat, scanonly]).
      - Elements are joined with spaces without quoting; quote a value with spaces yourself.
    type: list
    elements: str
    default: []
  reboot:
    description:
      - Whether to restart the host after the down-level phase and wait for the upgrade to end. Without it, the task
        reports that a restart is required and the upgrade completes at the host's next restart.
    type: bool
    default: true
  reboot_timeout:
    description:
      - How long, in seconds, to wait for the host to come back from the upgrade's restarts and finish starting up.
    type: int
    default: 7200
extends_documentation_fragment:
  - wuacache.wua._attributes
  - wuacache.wua._options
attributes:
  check_mode:
    support: full
    details:
      - Reads the host's OS and reports what it would run; runs nothing else and does not contact the server.
  diff_mode:
    support: none
notes:
  - O(timeout) bounds the down-level phase, which can take an hour on a slow host.
seealso:
  - module: wuacache.wua.install
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Upgrade to Windows Server 2025 from a share
  wuacache.wua.os_upgrade:
    setup_path: \\fileserver\iso\ws2025\setup.exe
  register: wua_upgrade

- name: Show the new build
  ansible.builtin.debug:
    msg: "{{ wua_upgrade.build_before }} -> {{ wua_upgrade.build_after }} ({{ wua_upgrade.os }})"

- name: Only check compatibility
  wuacache.wua.os_upgrade:
    setup_path: D:\setup.exe
    extra_arguments: [/compat, scanonly]
    reboot: false
"""

RETURN = r"""
setup_path:
  description: The C(setup.exe) that ran, or would run in check mode.
  returned: always
  type: str
arguments:
  description: Its arguments, without the C(/copylogs) switch the host adds.
  returned: always
  type: list
  elements: str
build_before:
  description: The OS build before the upgrade, with its update revision.
  returned: always
  type: str
  sample: "20348.2227"
build_after:
  description: The OS build after the restart.
  returned: when the host was restarted
  type: str
  sample: "26100.1742"
os:
  description: The OS caption, after the restart when there was one.
  returned: always
  type: str
  sample: Microsoft Windows Server 2025 Standard
exit_code:
  description: The exit code of C(setup.exe), as a signed 32-bit integer.
  returned: when setup.exe ran
  type: int
  sample: 3
logs:
  description: Where Setup copies its logs on failure, on the host.
  returned: when setup.exe ran
  type: str
  sample: C:\ProgramData\wuacache\logs\os_upgrade
rebooted:
  description: Whether the host was restarted.
  returned: when setup.exe ran
  type: bool
"""
