"""WinRM message encryption over plain HTTP ([MS-WSMV] 2.2.9.1.1, HTTP-SPNEGO-session-encrypted).

After an NTLM handshake, clients seal every SOAP message with the connection's
security context and send it as a two-part MIME body; Windows answers the same
way. The binary part is a little-endian uint32 signature length, the
signature, then the sealed message.
"""

from __future__ import annotations

import re
import struct

import spnego
from spnego.exceptions import SpnegoError

PROTOCOL = b"application/HTTP-SPNEGO-session-encrypted"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL.decode()}";boundary="Encrypted Boundary"'

_BOUNDARY = b"--Encrypted Boundary\r\n"
_END = b"--Encrypted Boundary--\r\n"
_PAYLOAD_HEADER = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"\tOriginalContent: type=[^;\r\n]+;charset=[^;\r\n]+;Length=(\d+)\r\n")


class EncryptionError(Exception):
    """The body is not a message sealed by this connection's context; Windows answers 400."""


def is_encrypted(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/encrypted") and PROTOCOL.decode().lower() in content_type.lower()


def unseal(context: spnego.ContextProxy, body: bytes) -> bytes:
    if not body.startswith(_BOUNDARY) or not body.endswith(_END):
        raise EncryptionError("not a multipart/encrypted body")
    headers, separator, payload = body[len(_BOUNDARY) : -len(_END)].partition(_BOUNDARY + _PAYLOAD_HEADER)
    length = _LENGTH.search(headers)
    if not separator or length is None or len(payload) < 4:
        raise EncryptionError("malformed multipart/encrypted body")
    (signature_length,) = struct.unpack("<I", payload[:4])
    if signature_length > len(payload) - 4:
        raise EncryptionError("signature longer than the payload")
    try:
        message = context.unwrap(payload[4:]).data
    except SpnegoError as exc:
        raise EncryptionError(f"cannot unseal the message: {exc}") from None
    if len(message) != int(length.group(1)):
        raise EncryptionError("unsealed length differs from OriginalContent")
    return message


def seal(context: spnego.ContextProxy, message: bytes) -> bytes:
    sealed = context.wrap(message, encrypt=True).data  # the signature, then the sealed message
    signature_length = context.query_message_sizes().header
    return b"".join(
        (
            _BOUNDARY,
            b"\tContent-Type: " + PROTOCOL + b"\r\n",
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n" % len(message),
            _BOUNDARY,
            _PAYLOAD_HEADER,
            struct.pack("<I", signature_length),
            sealed,
            _END,
        )
    )
