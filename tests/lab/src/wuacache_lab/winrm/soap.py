"""SOAP 1.2 envelopes of WS-Management, read and written the way Windows' WinRM service does.

Requests are matched on namespace URIs and local names only: every client picks
its own prefixes. Replies use the prefixes Windows uses (``s``, ``a``, ``w``,
``rsp``, ``x``, ``p``), which some clients' error messages show verbatim.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMAN_MS = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_WSMANFAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

REPLY_NAMESPACES = {
    "s": NS_SOAP,
    "a": NS_ADDRESSING,
    "x": NS_TRANSFER,
    "w": NS_WSMAN,
    "rsp": NS_SHELL,
    "p": NS_WSMAN_MS,
}

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WSMAN_FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ADDRESSING_FAULT_ACTION = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
CONTENT_TYPE = "application/soap+xml;charset=UTF-8"

# Error codes from wsmerror.h, as Windows puts them in wsmanfault:WSManFault/@Code.
ERROR_WSMAN_RESOURCE_NOT_FOUND = 0x80338000
ERROR_WSMAN_PROVIDER_FAILURE = 0x80338003
ERROR_WSMAN_ACTION_NOT_SUPPORTED = 0x80338013
ERROR_WSMAN_OPERATION_TIMEDOUT = 0x80338029
ERROR_WSMAN_SCHEMA_VALIDATION_ERROR = 0x80338041
ERROR_WSMAN_INVALID_XML = 0x80338043
ERROR_WSMAN_INVALID_SELECTORS = 0x8033805B

# Entities and network access are never needed to read a WS-Man request.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def qname(namespace: str, local_name: str) -> str:
    """Clark notation (``{uri}name``), the form lxml uses for tags and attributes."""
    return f"{{{namespace}}}{local_name}"


def new_id() -> str:
    """An identifier in the upper-case GUID form Windows gives shells and commands."""
    return str(uuid.uuid4()).upper()


class Action(StrEnum):
    """WS-Addressing actions a WinRS client sends; each reply's action is the same URI plus ``Response``."""

    CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
    COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
    SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
    RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
    SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"

    @property
    def response(self) -> str:
        return f"{self.value}Response"


class WSManFault(Exception):
    """A SOAP fault as the WinRM service returns it: HTTP 500 and a ``s:Fault`` body."""

    def __init__(
        self,
        code: str,
        subcode: str,
        wsman_code: int,
        message: str,
        *,
        reason: str | None = None,
        fault_detail: str | None = None,
        action: str = WSMAN_FAULT_ACTION,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.wsman_code = wsman_code
        self.message = message
        self.reason = reason or message
        self.fault_detail = fault_detail
        self.action = action

    def envelope(self, relates_to: str | None, machine: str) -> bytes:
        fault = etree.Element(qname(NS_SOAP, "Fault"))
        code = etree.SubElement(fault, qname(NS_SOAP, "Code"))
        etree.SubElement(code, qname(NS_SOAP, "Value")).text = self.code
        subcode = etree.SubElement(code, qname(NS_SOAP, "Subcode"))
        etree.SubElement(subcode, qname(NS_SOAP, "Value")).text = self.subcode
        reason = etree.SubElement(fault, qname(NS_SOAP, "Reason"))
        text = etree.SubElement(reason, qname(NS_SOAP, "Text"))
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
        text.text = self.reason
        detail = etree.SubElement(fault, qname(NS_SOAP, "Detail"))
        if self.fault_detail:
            etree.SubElement(detail, qname(NS_WSMAN, "FaultDetail")).text = self.fault_detail
        wsman_fault = etree.SubElement(
            detail,
            qname(NS_WSMANFAULT, "WSManFault"),
            nsmap={"f": NS_WSMANFAULT},
            Code=str(self.wsman_code),
            Machine=machine,
        )
        etree.SubElement(wsman_fault, qname(NS_WSMANFAULT, "Message")).text = self.message
        return envelope(self.action, relates_to, [fault])


def timed_out() -> WSManFault:
    """The long-poll answer to a Receive whose command produced nothing in time; clients retry."""
    return WSManFault(
        "s:Receiver",
        "w:TimedOut",
        ERROR_WSMAN_OPERATION_TIMEDOUT,
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
    )


def invalid_selectors(message: str, *, unexpected: bool = False) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        ERROR_WSMAN_INVALID_SELECTORS,
        message,
        reason="The WS-Management service cannot process the request "
        "because the request contained invalid selectors for the resource. ",
        fault_detail=(
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors" if unexpected else None
        ),
    )


def action_not_supported(action: str) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "a:ActionNotSupported",
        ERROR_WSMAN_ACTION_NOT_SUPPORTED,
        "The WS-Management service does not support the action specified in the request. ",
        fault_detail=action,
        action=ADDRESSING_FAULT_ACTION,
    )


def resource_not_found(resource_uri: str | None) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "a:DestinationUnreachable",
        ERROR_WSMAN_RESOURCE_NOT_FOUND,
        "The WS-Management service cannot process the request. "
        f"The service cannot find the resource identified by the resource URI and selectors: {resource_uri}",
        fault_detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI",
        action=ADDRESSING_FAULT_ACTION,
    )


def schema_violation(what: str) -> WSManFault:
    return WSManFault(
        "s:Sender",
        "w:SchemaValidationError",
        ERROR_WSMAN_SCHEMA_VALIDATION_ERROR,
        f"The SOAP XML in the message does not match the corresponding XML schema definition: {what}",
    )


def provider_failure(message: str) -> WSManFault:
    return WSManFault("s:Receiver", "w:InternalError", ERROR_WSMAN_PROVIDER_FAILURE, message)


@dataclass(frozen=True)
class Request:
    """The parts of a WS-Man request the WinRS service acts on."""

    action: str
    message_id: str
    resource_uri: str | None
    selectors: dict[str, str]
    operation_timeout: float | None
    max_envelope_size: int | None
    body: etree._Element


def parse_request(data: bytes) -> Request:
    """Read a request envelope; raises `WSManFault` for anything Windows would refuse to read."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise WSManFault(
            "s:Sender",
            "w:SchemaValidationError",
            ERROR_WSMAN_INVALID_XML,
            f"The WS-Management service cannot process the request because the XML is invalid. {exc}",
        ) from None
    if root.tag != qname(NS_SOAP, "Envelope"):
        raise schema_violation("the root element is not a SOAP 1.2 Envelope")
    header = root.find(qname(NS_SOAP, "Header"))
    body = root.find(qname(NS_SOAP, "Body"))
    if header is None or body is None:
        raise schema_violation("the Envelope needs a Header and a Body")

    action = _text(header, NS_ADDRESSING, "Action")
    message_id = _text(header, NS_ADDRESSING, "MessageID")
    if not action or not message_id:
        raise schema_violation("the Header needs an Action and a MessageID")

    selectors = {
        selector.get("Name", ""): (selector.text or "").strip()
        for selector in header.iterfind(f"{qname(NS_WSMAN, 'SelectorSet')}/{qname(NS_WSMAN, 'Selector')}")
    }
    timeout = _text(header, NS_WSMAN, "OperationTimeout")
    envelope_size = _text(header, NS_WSMAN, "MaxEnvelopeSize")
    if envelope_size is not None and not envelope_size.isdigit():
        raise schema_violation(f"MaxEnvelopeSize {envelope_size!r} is not a number")
    return Request(
        action=action,
        message_id=message_id,
        resource_uri=_text(header, NS_WSMAN, "ResourceURI"),
        selectors=selectors,
        operation_timeout=None if timeout is None else parse_duration(timeout),
        max_envelope_size=None if envelope_size is None else int(envelope_size),
        body=body,
    )


def parse_duration(text: str) -> float:
    """Seconds in an xs:duration of days, hours, minutes and seconds (``PT20S``, ``PT7200.000S``)."""
    match = _DURATION.fullmatch(text)
    parts = {name: float(value) for name, value in match.groupdict().items() if value} if match else {}
    if not parts or text.endswith("T"):
        raise schema_violation(f"{text!r} is not a duration")
    return (
        parts.get("days", 0.0) * 86400
        + parts.get("hours", 0.0) * 3600
        + parts.get("minutes", 0.0) * 60
        + parts.get("seconds", 0.0)
    )


def envelope(action: str, relates_to: str | None, body_children: list[etree._Element]) -> bytes:
    """A reply envelope; ``a:RelatesTo`` carries the request's MessageID, which clients check."""
    root = etree.Element(qname(NS_SOAP, "Envelope"), nsmap=REPLY_NAMESPACES)
    root.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    header = etree.SubElement(root, qname(NS_SOAP, "Header"))
    etree.SubElement(header, qname(NS_ADDRESSING, "Action")).text = action
    etree.SubElement(header, qname(NS_ADDRESSING, "MessageID")).text = f"uuid:{new_id()}"
    etree.SubElement(header, qname(NS_ADDRESSING, "To")).text = ANONYMOUS
    if relates_to is not None:
        etree.SubElement(header, qname(NS_ADDRESSING, "RelatesTo")).text = relates_to
    body = etree.SubElement(root, qname(NS_SOAP, "Body"))
    body.extend(body_children)
    return etree.tostring(root, encoding="utf-8")


def _text(parent: etree._Element, namespace: str, local_name: str) -> str | None:
    element = parent.find(qname(namespace, local_name))
    return None if element is None or element.text is None else element.text.strip()
