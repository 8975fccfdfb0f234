"""The one XML parser every payload module uses, hardened for network input.

NOTIFY and MESSAGE bodies are attacker-controlled, so this parser never resolves
entities, never loads a DTD, never touches the network, refuses any DOCTYPE
declaration before expansion could happen (billion laughs, external entities)
and caps the size of a document. Every defect becomes a `PayloadError`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from lxml import etree

from phone.payloads.error import PayloadError

DOCUMENT_LIMIT = 256 * 1024
"""Largest single XML document accepted, in bytes."""

MULTIPART_LIMIT = 4 * 1024 * 1024
"""Largest multipart body accepted (an RLS NOTIFY for a long list), in bytes."""

XML_NS = "http://www.w3.org/XML/1998/namespace"
LANG = f"{{{XML_NS}}}lang"

Element = Any
"""An lxml element; lxml ships no type stubs we rely on."""

E = TypeVar("E", bound=Enum)


def qname(namespace: str, local: str) -> str:
    """The Clark notation `{namespace}local` lxml uses for tags and attributes."""
    return f"{{{namespace}}}{local}"


def parse(
    data: bytes,
    *,
    document: str,
    namespace: str,
    root: str,
    limit: int = DOCUMENT_LIMIT,
) -> Element:
    """Parse `data` and return its root element, which must be `{namespace}root`."""
    element = parse_any(data, document=document, limit=limit)
    if element.tag != qname(namespace, root):
        raise PayloadError(
            document, f"root element is {element.tag}, expected {{{namespace}}}{root}"
        )
    return element


def parse_any(data: bytes, *, document: str, limit: int = DOCUMENT_LIMIT) -> Element:
    """Parse `data` whatever its root element (an XCAP element body, say)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PayloadError(document, f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > limit:
        raise PayloadError(document, f"{len(data)} bytes exceeds the {limit}-byte limit")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise PayloadError(document, "DOCTYPE declarations are refused")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
    )
    try:
        tree = etree.fromstring(data, parser).getroottree()
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise PayloadError(document, f"not well-formed XML: {exc}") from None
    # Another encoding (UTF-16) can hide a DOCTYPE from the byte scan above.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise PayloadError(document, "DOCTYPE declarations are refused")
    return tree.getroot()


def serialise(element: Element) -> bytes:
    """The UTF-8 bytes of a document we send, with its XML declaration."""
    return bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8"))


def sub(parent: Element, namespace: str, local: str, value: str | None = None) -> Element:
    """Append `{namespace}local` to `parent` when building, with optional text."""
    element = etree.SubElement(parent, qname(namespace, local))
    if value is not None:
        element.text = value
    return element


def children(
    element: Element, namespace: str | None = None, local: str | None = None
) -> list[Element]:
    """Child elements (no comments or processing instructions), optionally one kind."""
    if namespace is None:
        return list(element.iterchildren(etree.Element))
    return list(element.iterchildren(qname(namespace, local or "*")))


def child(element: Element, namespace: str, local: str) -> Element | None:
    """The first child `{namespace}local`, or None."""
    return next(element.iterchildren(qname(namespace, local)), None)


def local_name(element: Element) -> str:
    tag = str(element.tag)
    return tag[tag.index("}") + 1 :] if tag.startswith("{") else tag


def namespace_of(element: Element) -> str | None:
    tag = str(element.tag)
    return tag[1 : tag.index("}")] if tag.startswith("{") else None


def text(element: Element | None) -> str | None:
    """The text of an element, stripped; None if the element is absent."""
    if element is None:
        return None
    return "".join(element.itertext()).strip()


def required_attr(element: Element, name: str, document: str) -> str:
    value = element.get(name)
    if value is None:
        raise PayloadError(document, f"<{local_name(element)}> lacks its {name!r} attribute")
    return str(value)


def enum_value(kind: type[E], raw: str | None, document: str, what: str) -> E:
    """`raw` as a member of `kind`; an unknown or missing value is a PayloadError."""
    if raw is None:
        raise PayloadError(document, f"{what} is missing")
    try:
        return kind(raw.strip())
    except ValueError:
        raise PayloadError(document, f"{what} has unknown value {raw!r}") from None


def int_value(raw: str | None, document: str, what: str) -> int:
    """A non-negative xs:integer / xs:unsignedInt."""
    if raw is None:
        raise PayloadError(document, f"{what} is missing")
    stripped = raw.strip()
    if not stripped.isdigit() or not stripped.isascii() or len(stripped) > 20:
        raise PayloadError(document, f"{what} is not a non-negative integer: {raw!r}")
    return int(stripped)


def optional_int(raw: str | None, document: str, what: str) -> int | None:
    return None if raw is None else int_value(raw, document, what)


def bool_value(raw: str | None, document: str, what: str) -> bool:
    """An xs:boolean: true, false, 1 or 0."""
    value = None if raw is None else raw.strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise PayloadError(document, f"{what} is not a boolean: {raw!r}")


def datetime_value(raw: str | None, document: str, what: str) -> datetime | None:
    """An xs:dateTime, or None when absent."""
    if raw is None:
        return None
    stripped = raw.strip()
    if "T" not in stripped:
        raise PayloadError(document, f"{what} is not an xs:dateTime: {raw!r}")
    try:
        return datetime.fromisoformat(stripped)
    except ValueError:
        raise PayloadError(document, f"{what} is not an xs:dateTime: {raw!r}") from None


def format_datetime(value: datetime) -> str:
    """An xs:dateTime, with `Z` for UTC as most SIMPLE stacks write it."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def lang_of(element: Element) -> str | None:
    value = element.get(LANG)
    return None if value is None else str(value)
