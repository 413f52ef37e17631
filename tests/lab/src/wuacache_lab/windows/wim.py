"""The part of the Windows Imaging Format (WIM) Windows Setup reads first.

A WIM starts with a 208-byte header (``WIMHEADER_V1_PACKED``): the
signature ``MSWIM\\0\\0\\0``, its size, version, flags, chunk size, GUID,
part numbers, image count, then resource headers (``RESHDR_DISK_SHORT``: a
7-byte size, a flag byte, the offset and the original size) of the lookup
table, the XML data, the boot metadata and the integrity table. The XML data
is a UTF-16LE document (with its byte order mark) describing each image:
``<WIM><IMAGE INDEX="1">...<WINDOWS><ARCH>``, ``<EDITIONID>``,
``<INSTALLATIONTYPE>``, ``<PRODUCTTYPE>``, ``<LANGUAGES><DEFAULT>``,
``<VERSION><MAJOR>``, ``<MINOR>``, ``<BUILD>``, ``<SPBUILD>``... That is
where Setup learns the version and edition it would install.

The images the lab writes hold no files: only the header and the XML data,
which is all the emulated Setup reads.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from lxml import etree

from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.profiles import OsProfile

SIGNATURE = b"MSWIM\0\0\0"
HEADER = struct.Struct("<8sIIII16sHHI24s24s24sI24s60s")
RESOURCE_HEADER = struct.Struct("<7sBqq")
WIM_VERSION = 0x10D00
# FLAG_HEADER_RP_FIX: the images were captured with reparse point fixups.
FLAG_HEADER_RP_FIX = 0x80
CHUNK_SIZE = 32 * 1024
# ERROR_BAD_FORMAT: "An attempt was made to load a program with an incorrect format."
ERROR_BAD_FORMAT = 0x8007000B


@dataclass(frozen=True)
class WimImage:
    """What the XML data says of one image."""

    name: str
    edition_id: str  # Professional, ServerStandard...
    installation_type: str  # Client or Server
    product_type: str  # WinNT (workstation) or ServerNT
    architecture: int  # PROCESSOR_ARCHITECTURE_*: 0 x86, 9 x64, 12 arm64
    major: int
    minor: int
    build: int
    sp_build: int  # the update build revision
    default_language: str

    @classmethod
    def of(cls, profile: OsProfile) -> WimImage:
        """The image an installation ISO of ``profile`` holds for its edition."""
        return cls(
            name=profile.caption.removeprefix("Microsoft "),
            edition_id=profile.edition_id,
            installation_type="Client" if profile.product_type == 1 else "Server",
            product_type="WinNT" if profile.product_type == 1 else "ServerNT",
            architecture=profile.processor_architecture,
            major=profile.major_version,
            minor=profile.minor_version,
            build=profile.build,
            sp_build=profile.ubr,
            default_language=profile.display_languages[0],
        )

    @property
    def release(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.build


def build_wim(images: list[WimImage]) -> bytes:
    """A WIM file of ``images``: its header and its XML data."""
    document = etree.Element("WIM")
    etree.SubElement(document, "TOTALBYTES").text = "0"
    for index, image in enumerate(images, start=1):
        element = etree.SubElement(document, "IMAGE", INDEX=str(index))
        windows = etree.SubElement(element, "WINDOWS")
        for tag, value in (
            ("ARCH", image.architecture),
            ("PRODUCTNAME", "Microsoft\u00ae Windows\u00ae Operating System"),
            ("EDITIONID", image.edition_id),
            ("INSTALLATIONTYPE", image.installation_type),
            ("PRODUCTTYPE", image.product_type),
        ):
            etree.SubElement(windows, tag).text = str(value)
        languages = etree.SubElement(windows, "LANGUAGES")
        etree.SubElement(languages, "LANGUAGE").text = image.default_language
        etree.SubElement(languages, "DEFAULT").text = image.default_language
        version = etree.SubElement(windows, "VERSION")
        for tag, number in (
            ("MAJOR", image.major),
            ("MINOR", image.minor),
            ("BUILD", image.build),
            ("SPBUILD", image.sp_build),
            ("SPLEVEL", 0),
        ):
            etree.SubElement(version, tag).text = str(number)
        etree.SubElement(windows, "SYSTEMROOT").text = "WINDOWS"
        for tag in ("NAME", "DESCRIPTION", "DISPLAYNAME", "DISPLAYDESCRIPTION"):
            etree.SubElement(element, tag).text = image.name
        etree.SubElement(element, "FLAGS").text = image.edition_id
    xml = "\ufeff".encode("utf-16-le") + etree.tostring(document, encoding="unicode").encode("utf-16-le")
    empty = _resource_header(0, 0)
    header = HEADER.pack(
        SIGNATURE,
        HEADER.size,
        WIM_VERSION,
        FLAG_HEADER_RP_FIX,
        CHUNK_SIZE,
        uuid.uuid4().bytes_le,
        1,  # part number
        1,  # total parts
        len(images),
        empty,  # lookup table
        _resource_header(HEADER.size, len(xml)),
        empty,  # boot metadata
        0,  # boot index
        empty,  # integrity table
        b"\0" * 60,
    )
    return header + xml


def read_wim_images(data: bytes) -> list[WimImage]:
    """The images a WIM file describes in its XML data; ERROR_BAD_FORMAT for anything else."""
    if len(data) < HEADER.size:
        raise HResultError(ERROR_BAD_FORMAT, "The file is too short for a WIM header.")
    signature, header_size, *_, xml_resource, _, _, _, _ = HEADER.unpack_from(data)
    if signature != SIGNATURE or header_size != HEADER.size:
        raise HResultError(ERROR_BAD_FORMAT, "The file is not a WIM file.")
    size_bytes, _, offset, _ = RESOURCE_HEADER.unpack(xml_resource)
    size = int.from_bytes(size_bytes, "little")
    if offset + size > len(data):
        raise HResultError(ERROR_BAD_FORMAT, "The WIM file's XML data lies beyond its end.")
    try:
        document = etree.fromstring(data[offset : offset + size].decode("utf-16"))
        return [_image(element) for element in document.iterfind("IMAGE")]
    except (UnicodeDecodeError, etree.XMLSyntaxError, AttributeError, ValueError) as error:
        raise HResultError(ERROR_BAD_FORMAT, f"The WIM file's XML data cannot be read: {error}") from error


def _resource_header(offset: int, size: int) -> bytes:
    return RESOURCE_HEADER.pack(size.to_bytes(7, "little"), 0, offset, size)


def _image(element: etree._Element) -> WimImage:
    def text(path: str) -> str:
        found = element.findtext(path)
        if found is None:
            raise ValueError(f"the image has no {path}")
        return found

    return WimImage(
        name=text("NAME"),
        edition_id=text("WINDOWS/EDITIONID"),
        installation_type=text("WINDOWS/INSTALLATIONTYPE"),
        product_type=text("WINDOWS/PRODUCTTYPE"),
        architecture=int(text("WINDOWS/ARCH")),
        major=int(text("WINDOWS/VERSION/MAJOR")),
        minor=int(text("WINDOWS/VERSION/MINOR")),
        build=int(text("WINDOWS/VERSION/BUILD")),
        sp_build=int(text("WINDOWS/VERSION/SPBUILD")),
        default_language=text("WINDOWS/LANGUAGES/DEFAULT"),
    )
