#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cleanup
short_description: Empty the download staging of a Windows host
version_added: 0.1.0
description:
  - Removes what downloads left on the host under C(%ProgramData%\\wuacache), that is the files staged before the
    Windows Update Agent took them into its cache, partial downloads kept for a later resume, and downloaded packages.
  - The offline catalog C(wsusscn2.cab) stays, so that the next scan does not download it again.
  - The server's own cleanup (files no host needs any more) is run by the C(wuacache.wua.cleanup) playbook, or by the
    server on its schedule.
options: {}
extends_documentation_fragment:
  - wuacache.wua._attributes
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
notes:
  - Needs no elevation; works over the C(ansible.builtin.winrm) and C(ansible.builtin.ssh) connections. The
    C(ansible.builtin.psrp) connection is untested.
  - Skipped in check mode, since what would be removed is only known by removing it.
author:
  - wuacache contributors (@wuacache)
"""

EXAMPLES = r"""
- name: Free the disk space downloads left on the host
  wuacache.wua.cleanup:
  register: wua_cleanup

- name: Show what was freed
  ansible.builtin.debug:
    msg: "{{ wua_cleanup.removed_files }} files, {{ wua_cleanup.removed_bytes }} bytes"
"""

RETURN = r"""
removed_files:
  description: How many files were removed.
  returned: success
  type: int
  sample: 12
removed_bytes:
  description: How many bytes they held.
  returned: success
  type: int
  sample: 734003200
"""
