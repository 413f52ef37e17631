#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: host_info
short_description: Report the Windows Update readiness of a Windows host
version_added: 0.1.0
description:
  - Reads what matters before a Windows host is patched from an offline catalog, in one short request to the host.
  - It reports the Windows Update Agent version, the operating system build and update build revision, the start mode
    and state of the C(wuauserv) service, the markers of a pending reboot, and the free space on the system drive.
  - It only reads the host, so it never reports a change and runs in check mode too.
options: {}
extends_documentation_fragment:
  - wuacache.wua._attributes
  - wuacache.wua._attributes.info_module
notes:
  - Needs no elevation. None of the calls it makes is refused to a remote (network) logon such as WinRM, so it runs
    without C(become).
  - Works over the C(ansible.builtin.winrm) and C(ansible.builtin.ssh) connections; the C(ansible.builtin.psrp)
    connection is untested.
    The host needs Windows PowerShell 5.1.
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Read the Windows Update readiness of the host
  wuacache.wua.host_info:
  register: wua_host

- name: Stop patching hosts that wait for a reboot
  ansible.builtin.fail:
    msg: "{{ inventory_hostname }} waits for a reboot ({{ wua_host.reboot_indicators | join(', ') }})"
  when: wua_host.reboot_pending

- name: Require 10 GiB free on the system drive
  ansible.builtin.assert:
    that: wua_host.system_drive.free_bytes >= 10 * 1024 ** 3
    fail_msg: "{{ wua_host.system_drive.device_id }} has less than 10 GiB free"
"""

RETURN = r"""
computer_name:
  description: The computer name of the host (C(COMPUTERNAME)).
  returned: success
  type: str
  sample: WS2022-01
wua_version:
  description: Version of the Windows Update Agent, from C(IUpdateAgentInfo::GetInfo("ProductVersionString")).
  returned: success
  type: str
  sample: 10.0.20348.2227
os:
  description: The operating system, from C(Win32_OperatingSystem) and the registry.
  returned: success
  type: dict
  contains:
    caption:
      description: The product name, in the language of the host.
      returned: success
      type: str
      sample: Microsoft Windows Server 2022 Standard
    version:
      description: The version, C(major.minor.build).
      returned: success
      type: str
      sample: 10.0.20348
    build:
      description: The build number.
      returned: success
      type: int
      sample: 20348
    ubr:
      description:
        - The update build revision, which cumulative updates raise; the patch level reads C(build.ubr), such as C(20348.2227).
        - V(null) on Windows versions that do not record it.
      returned: success
      type: int
      sample: 2227
    architecture:
      description: The architecture, as Windows words it in the language of the host.
      returned: success
      type: str
      sample: 64-bit
    product_type:
      description: The kind of system.
      returned: success
      type: str
      choices: [workstation, domain_controller, server]
      sample: server
    last_boot_time:
      description: When the host last started, in UTC, ISO 8601.
      returned: success
      type: str
      sample: "2024-05-14T06:12:31.5000000Z"
wuauserv:
  description: The Windows Update service, from C(Win32_Service).
  returned: success
  type: dict
  contains:
    start_mode:
      description: Its start mode, such as V(auto), V(manual) or V(disabled).
      returned: success
      type: str
      sample: manual
    state:
      description: Its state, such as V(running), V(stopped) or V(start_pending).
      returned: success
      type: str
      sample: stopped
    recorded:
      description:
        - The state an elevated run recorded before it started the service, while that run holds the host, or when it
          ended before it could put the service back; null otherwise.
        - The next run puts the service back in this state, and the patching modules' C(wuauserv_after=unchanged)
          keeps it.
      returned: success
      type: dict
      sample: {start_mode: disabled, running: false}
      contains:
        start_mode:
          description: V(automatic), V(manual) or V(disabled).
          type: str
          returned: success
        running:
          description: Whether it was running.
          type: bool
          returned: success
reboot_pending:
  description: Whether the host waits for a reboot, that is whether any of RV(reboot_indicators) is present.
  returned: success
  type: bool
  sample: true
reboot_indicators:
  description:
    - The markers of a pending reboot found on the host.
    - V(cbs_reboot_pending) is the Component Based Servicing C(RebootPending) key, V(wu_reboot_required) the Windows Update
      C(RebootRequired) key, and V(pending_file_rename) the C(PendingFileRenameOperations) value of the Session Manager.
  returned: success
  type: list
  elements: str
  sample: [cbs_reboot_pending, pending_file_rename]
startup_complete:
  description:
    - Whether Windows has finished starting up, so that the host can be patched. Just after a restart WinRM may answer
      while Windows still configures updates.
    - True once LogonUI has created the C(AutoLogonChecked) key of C(Winlogon) (it is about to show the logon screen)
      and Component Based Servicing's C(ServicingInProgress) value says servicing is not at work.
    - The modules that restart a host wait for this before they go on.
  returned: success
  type: bool
  sample: true
system_drive:
  description: The drive Windows is installed on, from C(Win32_LogicalDisk).
  returned: success
  type: dict
  contains:
    device_id:
      description: Its drive letter.
      returned: success
      type: str
      sample: "C:"
    free_bytes:
      description: Its free space, in bytes.
      returned: success
      type: int
      sample: 41255329792
    size_bytes:
      description: Its size, in bytes.
      returned: success
      type: int
      sample: 135838822400
hresult:
  description: The HRESULT of the call that failed on the host, in the hexadecimal form Microsoft documents.
  returned: when the host reports a failure
  type: str
  sample: "0x80070005"
"""
