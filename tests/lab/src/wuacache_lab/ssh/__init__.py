"""The OpenSSH server of the lab's emulated Windows hosts."""

from __future__ import annotations

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# asyncssh loads its DSA support at import, which cryptography deprecates; the lab's keys are ed25519 keys.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh  # noqa: F401

from .server import SSHEndpoint  # noqa: E402

__all__ = ["SSHEndpoint"]
