#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: install
short_description: Install the updates the wuacache server allows on a Windows host
version_added: 0.1.0
description:
  - Scans and downloads as M(wuacache.wua.download) does, then installs the updates the server's plan allows
    (V(PENDING), V(MISSING) once their files arrived, and V(ERROR), whose last install failed) that are downloaded
    and not installed.
  - Updates the plan does not allow (V(DISCARDED)) are never touched, and installed updates are never uninstalled.
  - Updates whose installer can ask for user input (C(InstallationBehavior.CanRequestUserInput)) are neither downloaded
    nor installed, as Microsoft's install sample does, since nobody can answer them in the unattended task that installs.
    They are reported as skipped, with a warning, and stay to install interactively.
  - With O(reboot), it restarts the host when an install asks for it and goes on in rounds, rescanning each time,
    until nothing is left to install. It stops with an error when updates installed in an earlier round are still
    not installed (an update loop), or after O(max_rounds) rounds.
  - It rescans after the last install, so that the server learns the result of every install from the host's
    update history.
options:
  wait_for_files:
    description:
      - How long, in seconds, to wait for the server to fetch the files of the updates to download, in each round.
    type: int
    default: 0
  reboot:
    description:
      - Whether to restart the host when an install requires it, or when the Windows Update Agent requires a restart
        before it installs anything; without it, the latter is an error.
      - A host that already waits for a restart (a reboot marker, or updates installed until the next restart) is
        restarted first, so that those installs complete before any other.
      - Without it, updates installed until the next restart are reported as V(PENDING) and never installed again.
      - The restart is C(shutdown.exe /r) in a few seconds; a restart another tool scheduled for later is aborted
        (C(shutdown.exe /a)) and replaced by this one, with a warning.
    type: bool
    default: false
  reboot_timeout:
    description:
      - How long, in seconds, to wait for the host to come back from a restart and finish starting up.
    type: int
    default: 1200
  max_rounds:
    description:
      - The most install rounds the action runs.
    type: int
    default: 3
extends_documentation_fragment:
  - wuacache.wua._attributes
  - wuacache.wua._options
attributes:
  check_mode:
    support: full
    details:
      - Scans and reports, and returns the updates that would be installed, without downloading, installing or
        restarting.
  diff_mode:
    support: none
seealso:
  - module: wuacache.wua.scan
  - module: wuacache.wua.download
  - module: wuacache.wua.uninstall
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Install what the server allows, restarting as often as needed
  wuacache.wua.install:
    reboot: true
    wait_for_files: 3600
  register: wua_install

- name: Show the installs
  ansible.builtin.debug:
    msg: "{{ wua_install.installs | map(attribute='title') }}"
"""

RETURN = r"""
installs:
  description:
    - The outcome of each install (the last one per update), and the updates left out of the install.
    - In check mode, the updates that would be installed (C(update_id) and C(title) only), and those that would be left out.
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
    installed:
      description: Whether the install succeeded (C(OperationResultCode) 2 or 3).
      type: bool
    skipped:
      description:
        - Whether the update was left out of the install on purpose, because its installer can ask for user input
          (C(InstallationBehavior.CanRequestUserInput)); C(msg) says so. It is no failure.
      type: bool
    result_code:
      description: The C(OperationResultCode) of C(IUpdateInstallationResult); V(null) for an update the installer was not given.
      type: int
      sample: 2
    result:
      description:
        - The result code in words; V(skipped) for an update left out, V(not_started) for one the host's search did not
          return.
      type: str
      choices: [not_started, in_progress, succeeded, succeeded_with_errors, failed, aborted, skipped]
    hresult:
      description: The HRESULT of the install; V(null) for an update the installer was not given.
      type: str
      sample: "0x80240022"
    hresult_name:
      description: Its name, V(null) for success.
      type: str
      sample: WU_E_ALL_UPDATES_FAILED
    reboot_required:
      description: Whether the update waits for a restart.
      type: bool
    msg:
      description: Why the update is not installed.
      type: str
      returned: when the update is not installed
downloads:
  description: The outcome per downloaded update, as M(wuacache.wua.download) returns it.
  returned: success, except in check mode
  type: list
  elements: dict
installed:
  description: How many updates were installed.
  returned: success, except in check mode
  type: int
failed_installs:
  description: How many updates could not be installed, those left out on purpose excepted.
  returned: success, except in check mode
  type: int
skipped_installs:
  description: How many updates were left out of the install because their installer can ask for user input.
  returned: success, except in check mode
  type: int
rebooted:
  description: Whether the host was restarted.
  returned: success, except in check mode
  type: bool
rounds:
  description: How many install rounds ran.
  returned: success, except in check mode
  type: int
servicing_log:
  description:
    - The lines of the host's servicing log, C(%windir%\Logs\CBS\CBS.log), about the last install that failed (an
      update that failed, an install that failed or was aborted, or an install the host could not run), read right
      after it.
    - The lines that name a failing HRESULT, or else servicing's errors and failures, each with the 5 lines around it;
      at most the last 200 lines of the log's last 64 KiB. C(...) stands between parts that are not next to each other.
  returned: when an install failed
  type: dict
  contains:
    path:
      description: The log's path on the host; V(null) when it could not be read.
      type: str
      sample: C:\Windows\Logs\CBS\CBS.log
    lines:
      description: The lines.
      type: list
      elements: str
    error:
      description: Why the log could not be read (such as a sharing violation); V(null) when it was read.
      type: str
"""
