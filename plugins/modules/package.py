#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: package
short_description: Install a package of the wuacache server on a Windows host
version_added: 0.1.0
description:
  - Installs an update the catalog does not carry (a driver, an out-of-band KB) that an admin uploaded to the
    wuacache server as a package. The controller reads the package with its token; the host downloads it from the
    server without one, checks its SHA-256, and installs it, an C(.msu) with C(wusa.exe /quiet /norestart), a C(.cab)
    with C(dism.exe /Online /Add-Package /Quiet /NoRestart). The downloaded file is deleted afterwards.
  - C(wusa.exe) needs the Windows Update service, which is started for the time of the install and left as
    O(wuauserv_after) says.
  - Then it scans and reports to the wuacache server, so that the server learns the new state.
  - An C(.msu) that is already installed is no change. A C(.cab) whose package C(Get-WindowsPackage) finds
    installed, installed at the next restart, or superseded is not given to C(dism.exe) again, and is no change.
  - A package that does not apply to the host, or any other exit code than success and success waiting for a restart
    (3010), fails the task, naming the code.
options:
  name:
    description:
      - The package's name on the server, such as V(windows10.0-kb5034441-x64.msu).
    type: str
    required: true
  reboot:
    description:
      - Whether to restart the host when the install requires it.
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
      - Reads the package, scans and reports, and reports a change unless the scan finds the package's KB installed;
        a package without a KB is reported as a change. Installs nothing.
  diff_mode:
    support: none
seealso:
  - module: wuacache.wua.install
  - module: wuacache.wua.uninstall
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Install the WinRE fix an admin uploaded to the server
  wuacache.wua.package:
    name: windows10.0-kb5034441-x64.msu
    reboot: true

- name: Install a network driver
  wuacache.wua.package:
    name: nic-driver-2024.cab
"""

RETURN = r"""
package:
  description: The package, as the server describes it.
  returned: success, or a failure after the package was read
  type: dict
  contains:
    name:
      description: Its file name.
      type: str
      sample: windows10.0-kb5034441-x64.msu
    kind:
      description: V(msu), installed with C(wusa.exe), or V(cab), installed with C(dism.exe).
      type: str
      choices: [msu, cab]
    size:
      description: Its size in bytes.
      type: int
    sha256:
      description: Its SHA-256, in base64.
      type: str
    sha1:
      description: Its SHA-1, in base64.
      type: str
    kb:
      description: The KB it installs, as digits; V(null) when the admin named none.
      type: str
      sample: "5034441"
    description:
      description: What the admin said it is.
      type: str
    created_at:
      description: When a package of this name was first uploaded.
      type: str
    updated_at:
      description: When its current file was uploaded.
      type: str
    url:
      description: Where hosts download it.
      type: str
exit_code:
  description:
    - The exit code of C(wusa.exe) or C(dism.exe), as a signed 32-bit integer.
    - V(null) when C(dism.exe) was not run because the package is there already (see RV(package_state)).
  returned: when the install ran
  type: int
  sample: 3010
package_state:
  description:
    - For a C(.cab), the state C(Get-WindowsPackage) gave its package before the install, such as V(NotPresent),
      V(Installed), V(InstallPending) or V(Superseded); V(null) for an C(.msu).
  returned: when the install ran
  type: str
  sample: NotPresent
download:
  description: How the host downloaded the package.
  returned: when the install ran
  type: dict
  contains:
    status:
      description: V(downloaded) or V(resumed).
      type: str
    size:
      description: The size of the file, in bytes.
      type: int
    transferred:
      description: The bytes received.
      type: int
rebooted:
  description: Whether the host was restarted.
  returned: when the install ran
  type: bool
"""
