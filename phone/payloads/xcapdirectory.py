"""The OMA XCAP directory (OMA-TS-XDM_Core, auid `org.openmobilealliance.xcap-directory`):
every document the user has, per auid, with its ETag.

Where the server has it, one GET tells which documents exist and whether
they changed, instead of one GET per document. A folder may carry an
`<error-code>` instead of entries (that application failed on the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from phone.payloads import xml

XCAP_DIRECTORY_NS = "urn:oma:xml:xdm:xcap-directory"
CONTENT_TYPE = "application/vnd.oma.xcap-directory+xml"
AUID = "org.openmobilealliance.xcap-directory"
DOCUMENT = "xcap-directory"


@dataclass(frozen=True)
class DirectoryEntry:
    """One document: its absolute URI and ETag."""

    uri: str
    etag: str
    last_modified: datetime | None = None
    size: int | None = None


@dataclass(frozen=True)
class Folder:
    """The documents of one auid, or the error the server had listing them."""

    auid: str
    entries: tuple[DirectoryEntry, ...] = ()
    error_code: str | None = None


@dataclass(frozen=True)
class XcapDirectory:
    folders: tuple[Folder, ...] = ()

    def folder(self, auid: str) -> Folder | None:
        return next((f for f in self.folders if f.auid == auid), None)


def _read_entry(element: xml.Element) -> DirectoryEntry:
    return DirectoryEntry(
        uri=xml.required_attr(element, "uri", DOCUMENT),
        etag=xml.required_attr(element, "etag", DOCUMENT),
        last_modified=xml.datetime_value(element.get("last-modified"), DOCUMENT, "last-modified"),
        size=xml.optional_int(element.get("size"), DOCUMENT, "size"),
    )


def _read_folder(element: xml.Element) -> Folder:
    error = xml.child(element, XCAP_DIRECTORY_NS, "error-code")
    return Folder(
        auid=xml.required_attr(element, "auid", DOCUMENT),
        entries=tuple(_read_entry(e) for e in xml.children(element, XCAP_DIRECTORY_NS, "entry")),
        error_code=None if error is None else xml.text(error),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> XcapDirectory:
    """Parse an application/vnd.oma.xcap-directory+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=XCAP_DIRECTORY_NS, root="xcap-directory", limit=limit
    )
    return XcapDirectory(
        folders=tuple(_read_folder(e) for e in xml.children(root, XCAP_DIRECTORY_NS, "folder"))
    )


def build(directory: XcapDirectory) -> bytes:
    """The application/vnd.oma.xcap-directory+xml body for `directory`."""
    root = etree.Element(
        xml.qname(XCAP_DIRECTORY_NS, "xcap-directory"), nsmap={None: XCAP_DIRECTORY_NS}
    )
    for folder in directory.folders:
        element = xml.sub(root, XCAP_DIRECTORY_NS, "folder")
        element.set("auid", folder.auid)
        if folder.error_code is not None:
            xml.sub(element, XCAP_DIRECTORY_NS, "error-code", folder.error_code)
        for entry in folder.entries:
            item = xml.sub(element, XCAP_DIRECTORY_NS, "entry")
            item.set("uri", entry.uri)
            item.set("etag", entry.etag)
            if entry.last_modified is not None:
                item.set("last-modified", xml.format_datetime(entry.last_modified))
            if entry.size is not None:
                item.set("size", str(entry.size))
    return xml.serialise(root)
