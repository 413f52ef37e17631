# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is PRIVATE to the collection: it may change in any release.

from __future__ import annotations


class ModuleDocFragment:

    # The options of every patching action (plugins/plugin_utils/_options.py).
    DOCUMENTATION = r"""
options:
  server_url:
    description:
      - Base URL of the wuacache server, such as C(https://wuacache.example.org).
      - Hosts download the catalog and the update files from it, so it must be reachable from the hosts too.
      - Falls back to the inventory variable C(wua_server_url), like every option of this list falls back to
        C(wua_<option>); the task's own value, or one set in C(module_defaults), wins.
    type: str
    required: true
  server_token:
    description:
      - "The controller token the action reports with, sent as C(Authorization: Bearer). Never logged."
      - Falls back to C(wua_server_token).
    type: str
  validate_certs:
    description:
      - Whether the controller checks the server's TLS certificate.
      - The hosts always check it, against their Windows certificate store (see C(docs/server.md) of the collection).
      - Falls back to C(wua_validate_certs).
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of the certificate authorities the controller trusts for the server.
      - The hosts do not use it; a private CA must be in their Local Machine Trusted Root Certification Authorities store.
      - Falls back to C(wua_ca_path).
    type: path
  enabled:
    description:
      - When V(false), the host is skipped with a message, and nothing is asked of it or of the server.
      - Falls back to C(wua_enabled).
    type: bool
    default: true
  direct_download:
    description:
      - Whether hosts download update files from Microsoft's URLs rather than from the server.
      - The catalog always comes from the server.
      - Falls back to C(wua_direct_download).
    type: bool
    default: false
  default_allow:
    description:
      - Whether an update that no rule names may be installed. Sent to the server, which decides.
      - Falls back to C(wua_default_allow).
    type: bool
    default: false
  allowed_severities:
    description:
      - MSRC severities the host installs whatever the rule sets say (V(Critical), V(Important), V(Moderate), V(Low)).
      - Sent to the server, which decides.
      - Falls back to C(wua_allowed_severities).
    type: list
    elements: str
    default: []
  install_delay:
    description:
      - How long after Microsoft last changed an update (its C(LastDeploymentChangeTime)) the host may install it.
      - A number of days, or a duration such as V(12h), V(7d) or V(2w). Sent to the server, which decides.
      - Falls back to C(wua_install_delay).
    type: raw
  maturities:
    description:
      - The rule set maturities the host accepts, such as V(DEV), V(PREPROD) or V(PROD).
      - Sent to the server, which decides.
      - Falls back to C(wua_maturities).
    type: list
    elements: str
    default: [PROD]
  rule_sets:
    description:
      - Names of the server's rule sets the host follows. Sent to the server, which decides.
      - Falls back to C(wua_rule_sets).
    type: list
    elements: str
    default: []
  criteria:
    description:
      - The Windows Update Agent search criteria of the scan.
      - Falls back to C(wua_criteria).
    type: str
    default: IsInstalled=0 or IsInstalled=1
  wuauserv_after:
    description:
      - The state the Windows Update service (C(wuauserv)) is left in after each operation; the host starts it
        for the time of the operation.
      - V(disabled) leaves it stopped and disabled, so that the host does not update itself from the Internet;
        V(manual) stopped with the manual start mode; V(automatic) running with the automatic start mode;
        V(unchanged) as it was found, before any operation of this collection started it (an operation that
        ended before it could put the service back left a record of that state, which the host reports and the
        next operation restores).
      - Falls back to C(wua_wuauserv_after).
    type: str
    choices: [disabled, manual, automatic, unchanged]
    default: disabled
  timeout:
    description:
      - The time budget, in seconds, of one operation that runs elevated on the host (a scan, a download, an install).
      - The operation's scheduled task on the host gets ten minutes more as its time limit, after which another
        operation may take the host over from it.
      - Falls back to C(wua_timeout).
    type: int
    default: 7200
  host_name:
    description:
      - The name of the host on the server.
      - Defaults to C(inventory_hostname) in lowercase. Falls back to C(wua_host_name).
    type: str
notes:
  - The host needs Windows PowerShell 5.1. Works over the C(ansible.builtin.winrm) and C(ansible.builtin.ssh)
    connections, without C(become); the C(ansible.builtin.psrp) connection is untested. The Windows Update Agent
    refuses most of its calls to a remote logon, so the action runs them in a transient scheduled task as SYSTEM,
    which it removes afterwards.
  - The action keeps the catalog in C(%ProgramData%\\wuacache), a folder only SYSTEM and Administrators may write to.
  - Every scan is reported to the server, which decides per update a status (V(OK), V(PENDING), V(MISSING),
    V(DISCARDED) or V(ERROR)) and a reason, and starts fetching the files the host needs.
"""

    # The plan every patching action returns.
    RETURN = r"""
updates:
  description: The updates the scan found, with the server's decision.
  returned: success
  type: list
  elements: dict
  contains:
    update_id:
      description: The C(UpdateID).
      type: str
      sample: 0b1e3bd6-5b6c-4c0e-9d61-1d2a83d02a94
    revision_number:
      description: The revision the scan found.
      type: int
      sample: 200
    title:
      description: The title, in English.
      type: str
      sample: 2024-01 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems (KB5034129)
    kb:
      description: Its KB articles.
      type: list
      elements: str
      sample: [KB5034129]
    severity:
      description: Its MSRC severity; V(null) for an update that is not a security update.
      type: str
      sample: Critical
    status:
      description: What the server decided.
      type: str
      choices: [OK, PENDING, MISSING, DISCARDED, ERROR]
    reason:
      description: Why, naming the rules that decided.
      type: str
      sample: "rule set 'prod': allowed_severities Critical; files available on the server"
    allowed:
      description: The rules' verdict; also true for an update held back by O(install_delay).
      type: bool
    delayed_until:
      description: When an update held back by O(install_delay) may be installed.
      type: str
    installed:
      description: Whether the Windows Update Agent finds it installed.
      type: bool
    downloaded:
      description: Whether its files are in the Windows Update Agent's cache.
      type: bool
    can_request_user_input:
      description:
        - Whether its installer can ask for user input (C(InstallationBehavior.CanRequestUserInput)); M(wuacache.wua.install)
          leaves such updates out.
      type: bool
counts:
  description: The number of updates per status, every status included.
  returned: success
  type: dict
  sample: {OK: 41, PENDING: 2, MISSING: 0, DISCARDED: 12, ERROR: 0}
reboot_required:
  description: Whether the host waits for a reboot (the Windows Update Agent says so, or a reboot marker is present).
  returned: success
  type: bool
cab:
  description: The host's copy of the catalog C(wsusscn2.cab).
  returned: success
  type: dict
  contains:
    path:
      description: Where it is on the host.
      type: str
      sample: C:\ProgramData\wuacache\wsusscn2.cab
    sha256:
      description: Its SHA-256, checked against the server's.
      type: str
    status:
      description: Whether it was V(downloaded), V(resumed) or V(not_modified).
      type: str
    transferred:
      description: Whether this run transferred it.
      type: bool
rule_sets:
  description: The rule sets the server applied, ignored (and why) or did not know.
  returned: success
  type: dict
  sample: {applied: [prod], ignored: [], unknown: []}
warnings:
  description: What the server found questionable in the report.
  returned: when the server has warnings
  type: list
  elements: str
hresult:
  description: The HRESULT of the call that failed on the host, in the hexadecimal form Microsoft documents.
  returned: when the host reports a failure
  type: str
  sample: "0x80070005"
"""
