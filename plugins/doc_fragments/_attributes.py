# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is PRIVATE to the collection: it may change in any release.

from __future__ import annotations


class ModuleDocFragment:

    # Every action of the collection: it runs on the controller and asks the host's bridge script for one operation at a time.
    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    description: Runs on the controller as an action plugin; the host only runs the collection's bridge script.
    support: full
  action_group:
    description: Use C(group/wuacache.wua.wua) in C(module_defaults) to set defaults for this action.
    support: full
    membership:
      - wuacache.wua.wua
  async:
    description: Supports being used with the C(async) keyword.
    support: none
    details:
      - The action drives the host step by step from the controller (long work runs in a task it polls), not as an async job.
  check_mode:
    description: Can run in check mode and report what it would change without changing the host.
  diff_mode:
    description: Reports what has changed, or would change in check mode, when in diff mode.
  platform:
    description: Target operating systems.
    support: full
    platforms: windows
"""

    # Use together with DOCUMENTATION for actions that only read the host.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action only reads the host.
  diff_mode:
    support: N/A
    details:
      - This action only reads the host.
"""
