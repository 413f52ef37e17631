#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: scan
short_description: Scan a Windows host against the offline catalog and report it to the wuacache server
version_added: 0.1.0
description:
  - Brings the host's copy of Microsoft's offline catalog C(wsusscn2.cab) up to date with the server's, checks its
    SHA-256, scans with the Windows Update Agent against it, and reports the result and the update history to the
    wuacache server.
  - Returns the server's plan, the status of every update and the reason for it.
  - Changes nothing on the host but the catalog the collection keeps there, and reports a change only when it was
    transferred.
options: {}
extends_documentation_fragment:
  - wuacache.wua._attributes
  - wuacache.wua._options
attributes:
  check_mode:
    support: full
    details:
      - The host is scanned and the scan reported in check mode too; the catalog, which is the collection's own
        cache, is still refreshed.
  diff_mode:
    support: none
seealso:
  - module: wuacache.wua.download
  - module: wuacache.wua.install
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Scan the host and report it to the server
  wuacache.wua.scan:
    server_url: https://wuacache.example.org
    server_token: "{{ wuacache_controller_token }}"
    rule_sets: [prod-security]
    install_delay: 7d
  register: wua_scan

- name: Show what the host lacks
  ansible.builtin.debug:
    msg: "{{ wua_scan.updates | selectattr('status', 'in', ['PENDING', 'MISSING']) | map(attribute='title') }}"
"""

RETURN = r"""
changed:
  description: Whether the catalog was transferred to the host.
  returned: always
  type: bool
"""
