"""Who owns what a process creates on an emulated host.

The owner of a new file or folder is the default owner of the creating
process's token (MicrosoftDocs/win32, desktop-src/SecAuthZ/owner-of-a-new-object.md).
For a member of the Administrators group running elevated, and for SYSTEM,
whose token holds that group too, it follows the security policy "System
objects: Default owner for objects created by members of the Administrators
group" (learn.microsoft.com,
windows/security/threat-protection/security-policy-settings/system-objects-default-owner-for-objects-created-by-members-of-the-administrators-group);
the lab follows that page: the registry value
``HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\NoDefaultAdminOwner`` is 0 for
"Administrators group" (the group owns it) and 1 for "Object creator" (the
account that created it does), and its effective default is "Administrators
group" on servers and "Object creator" on client computers. The lab's
``default_owner`` host setting (``lab fault host <host> default_owner
--owner administrators|creator``) gives a host the other value.

A process may make an item its own account's, or, when its token holds the
Administrators group, that group's (a SID the token holds with
SE_GROUP_OWNER, desktop-src/SecAuthZ/owner-of-a-new-object.md); any other
owner fails with ERROR_INVALID_OWNER.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from wuacache_lab.windows.disk import ADMINISTRATORS_SID, SYSTEM_SID

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost
    from wuacache_lab.windows.process import LogonSession

ADMINISTRATORS_GROUP = "administrators"
OBJECT_CREATOR = "creator"
DEFAULT_OWNER_VALUES = (ADMINISTRATORS_GROUP, OBJECT_CREATOR)
# HKLM\SYSTEM\CurrentControlSet\Control\Lsa, value NoDefaultAdminOwner.
NO_DEFAULT_ADMIN_OWNER = {ADMINISTRATORS_GROUP: 0, OBJECT_CREATOR: 1}

# The machine's account domain, and the relative ID of its built-in Administrator ("Well-known SIDs").
_MACHINE_DOMAIN = "S-1-5-21-3623811015-3361044348-30300820"
_ADMINISTRATOR_RID = 500


def account_sid(logon: LogonSession) -> str:
    """The SID of the account a process runs as: SYSTEM's, or a local account's."""
    if logon.user.casefold() == "system":
        return SYSTEM_SID
    if logon.user.casefold() == "administrator":
        return f"{_MACHINE_DOMAIN}-{_ADMINISTRATOR_RID}"
    return f"{_MACHINE_DOMAIN}-{1001 + zlib.crc32(logon.user.casefold().encode()) % 1000}"


def holds_administrators(logon: LogonSession) -> bool:
    """Whether the token holds the Administrators group: SYSTEM's, and an elevated administrator's."""
    return logon.user.casefold() == "system" or logon.administrator


def default_owner_policy(host: WindowsHost) -> str:
    """The host's value of the policy: its ``default_owner`` setting, else its edition's default."""
    return host.faults.default_owner() or (OBJECT_CREATOR if host.profile.product_type == 1 else ADMINISTRATORS_GROUP)


def default_owner(host: WindowsHost, logon: LogonSession) -> str:
    """The owner of what a process running as ``logon`` creates."""
    if holds_administrators(logon) and default_owner_policy(host) == ADMINISTRATORS_GROUP:
        return ADMINISTRATORS_SID
    return account_sid(logon)


def may_own(logon: LogonSession, owner: str) -> bool:
    """Whether the process's token may make ``owner`` the owner of an item (else ERROR_INVALID_OWNER)."""
    return owner == account_sid(logon) or (owner == ADMINISTRATORS_SID and holds_administrators(logon))
