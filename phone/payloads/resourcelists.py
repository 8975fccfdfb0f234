"""Resource lists (RFC 4826 §3): the user's contact lists kept on the XCAP server.

A document holds named lists; a list holds entries (a URI and a display name),
references to entries elsewhere (`entry-ref`, a relative XCAP URI), links to
whole lists elsewhere (`external`, an absolute XCAP URI) and nested lists.

Two layouts matter in the field, and both are plain RFC 4826 underneath:
- OMA's (also written by Blink): `oma_buddylist` holds the contacts,
  `oma_allcontacts` holds `external`s pointing at the other lists;
- Blink's address book: inside the list `sipsimple_addressbook`, contacts are
  `<contact>` elements of AG Projects' namespace (`urn:ag-projects:xml:ns:addressbook`),
  read here as `AddressbookContact`.

Any other element from another namespace (the schema's `##other`) is kept
as `Extension` in document order, so a document read and written back loses
nothing another client put there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from phone.payloads import xml
from phone.payloads.error import PayloadError

RESOURCE_LISTS_NS = "urn:ietf:params:xml:ns:resource-lists"
ADDRESSBOOK_NS = "urn:ag-projects:xml:ns:addressbook"
CONTENT_TYPE = "application/resource-lists+xml"
AUID = "resource-lists"
DOCUMENT = "resource-lists"

NESTING_LIMIT = 16
"""Deepest list nesting accepted: lists are read recursively."""


@dataclass(frozen=True)
class DisplayName:
    """A `<display-name>` with its language (RFC 4826 §3.2, xml:lang)."""

    text: str
    lang: str | None = None


@dataclass(frozen=True)
class Entry:
    """One resource (RFC 4826 `<entry>`); unique by `uri` within its list."""

    uri: str
    display_name: DisplayName | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class EntryRef:
    """A reference to an entry in another list (`<entry-ref>`): a relative
    HTTP URI below the XCAP root, pointing at an `<entry>` element."""

    ref: str
    display_name: DisplayName | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class External:
    """A whole list elsewhere (`<external>`): an absolute XCAP URI of a `<list>`."""

    anchor: str | None
    display_name: DisplayName | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class AddressbookContact:
    """A contact of Blink's address book (AG Projects' `<contact>`): its name, its
    URIs as (id, uri) pairs, the id of the one to call (`default`), and the whole
    element as read (`raw`, written back as it was)."""

    id: str
    name: str
    uris: tuple[tuple[str, str], ...]
    default: str | None = None
    raw: bytes = b""

    @property
    def uri(self) -> str | None:
        """The default URI, else the first."""
        chosen = dict(self.uris).get(self.default or "")
        return chosen if chosen is not None else next((u for _, u in self.uris), None)


@dataclass(frozen=True)
class Extension:
    """An element of another namespace, kept as XML (see `canonical`)."""

    xml: bytes


@dataclass(frozen=True)
class ResourceList:
    """A `<list>`: its items in document order; only top-level lists need a name."""

    name: str | None = None
    display_name: DisplayName | None = None
    items: tuple[Item, ...] = ()

    def lists(self) -> tuple[ResourceList, ...]:
        return tuple(item for item in self.items if isinstance(item, ResourceList))

    def entries(self) -> Iterator[Entry]:
        """Every `<entry>` of this list and its nested lists, in document order."""
        for item in self.items:
            if isinstance(item, Entry):
                yield item
            elif isinstance(item, ResourceList):
                yield from item.entries()


Item = ResourceList | Entry | EntryRef | External | AddressbookContact | Extension


@dataclass(frozen=True)
class ResourceLists:
    """A whole resource-lists document (RFC 4826 §3.2)."""

    lists: tuple[ResourceList, ...] = ()

    def list(self, name: str) -> ResourceList | None:
        """The top-level list called `name` (names are unique at each level, §3.4)."""
        return next((item for item in self.lists if item.name == name), None)


def canonical(element: xml.Element) -> bytes:
    """An element on its own, in one form wherever it sat: namespaces get the
    prefixes ns0, ns1, ... in order of first use, declared on the element
    itself. lxml moves an element's namespaces onto an ancestor's prefix when
    it is appended to a tree, so the prefixes as written cannot be kept stable
    (nor can C14N, which keeps them and refuses relative namespace URIs).
    Comments and processing instructions are dropped, their text kept."""
    uris: list[str] = []
    for node in element.iter(etree.Element):
        for name in (node.tag, *node.attrib):
            uri = name[1 : name.index("}")] if name.startswith("{") else None
            if uri is not None and uri != xml.XML_NS and uri not in uris:
                uris.append(uri)
    alone = etree.Element(element.tag, nsmap={f"ns{i}": uri for i, uri in enumerate(uris)})
    _copy_into(element, alone)
    return bytes(etree.tostring(alone, encoding="UTF-8"))


def _copy_into(source: xml.Element, target: xml.Element) -> None:
    for name, value in source.attrib.items():
        target.set(name, value)
    target.text = source.text
    last = None
    for child in source:
        if isinstance(child.tag, str):
            last = etree.SubElement(target, child.tag)
            _copy_into(child, last)
            last.tail = child.tail
        elif child.tail:
            if last is None:
                target.text = (target.text or "") + child.tail
            else:
                last.tail = (last.tail or "") + child.tail


def _display_name(element: xml.Element) -> DisplayName | None:
    found = xml.child(element, RESOURCE_LISTS_NS, "display-name")
    if found is None:
        return None
    return DisplayName(text=found.text or "", lang=xml.lang_of(found))


def _extensions(element: xml.Element) -> tuple[Extension, ...]:
    return tuple(
        Extension(canonical(child))
        for child in xml.children(element)
        if xml.namespace_of(child) != RESOURCE_LISTS_NS
    )


def _read_contact(element: xml.Element) -> AddressbookContact:
    name = xml.child(element, ADDRESSBOOK_NS, "name")
    uris = xml.child(element, ADDRESSBOOK_NS, "uris")
    found = () if uris is None else xml.children(uris, ADDRESSBOOK_NS, "uri")
    return AddressbookContact(
        id=xml.required_attr(element, "id", DOCUMENT),
        name=(name.text or "") if name is not None else "",
        uris=tuple(
            (xml.required_attr(uri, "id", DOCUMENT), xml.required_attr(uri, "uri", DOCUMENT))
            for uri in found
        ),
        default=None if uris is None else uris.get("default"),
        raw=canonical(element),
    )


def _read_item(element: xml.Element, depth: int) -> Item:
    namespace, name = xml.namespace_of(element), xml.local_name(element)
    if namespace == ADDRESSBOOK_NS and name == "contact":
        return _read_contact(element)
    if namespace != RESOURCE_LISTS_NS:
        return Extension(canonical(element))
    if name == "list":
        return _read_list(element, depth + 1)
    if name == "entry":
        return Entry(
            uri=xml.required_attr(element, "uri", DOCUMENT),
            display_name=_display_name(element),
            extensions=_extensions(element),
        )
    if name == "entry-ref":
        return EntryRef(
            ref=xml.required_attr(element, "ref", DOCUMENT),
            display_name=_display_name(element),
            extensions=_extensions(element),
        )
    if name == "external":
        return External(
            anchor=element.get("anchor"),
            display_name=_display_name(element),
            extensions=_extensions(element),
        )
    raise PayloadError(DOCUMENT, f"unknown element <{name}> in a <list>")


def _read_list(element: xml.Element, depth: int = 0) -> ResourceList:
    if depth > NESTING_LIMIT:
        raise PayloadError(DOCUMENT, f"lists nested deeper than {NESTING_LIMIT}")
    items = tuple(
        _read_item(child, depth)
        for child in xml.children(element)
        if not (
            xml.namespace_of(child) == RESOURCE_LISTS_NS and xml.local_name(child) == "display-name"
        )
    )
    return ResourceList(name=element.get("name"), display_name=_display_name(element), items=items)


def read_list(element: xml.Element) -> ResourceList:
    """A `<list>` element already parsed (an rls-services `<list>`, an XCAP element GET)."""
    return _read_list(element)


def parse(data: bytes, *, limit: int = xml.MULTIPART_LIMIT) -> ResourceLists:
    """Parse an application/resource-lists+xml body (a long list is a big document)."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=RESOURCE_LISTS_NS, root="resource-lists", limit=limit
    )
    others = [c for c in xml.children(root) if c.tag != xml.qname(RESOURCE_LISTS_NS, "list")]
    if others:
        raise PayloadError(DOCUMENT, f"unexpected {others[0].tag} in <resource-lists>")
    return ResourceLists(lists=tuple(_read_list(e) for e in xml.children(root)))


def _write_display_name(parent: xml.Element, display_name: DisplayName | None) -> None:
    if display_name is not None:
        element = xml.sub(parent, RESOURCE_LISTS_NS, "display-name", display_name.text)
        if display_name.lang is not None:
            element.set(xml.LANG, display_name.lang)


def _append_raw(parent: xml.Element, data: bytes) -> None:
    parent.append(xml.parse_any(data, document=DOCUMENT))


def _write_item(parent: xml.Element, item: Item) -> None:
    if isinstance(item, ResourceList):
        write_list(parent, item)
        return
    if isinstance(item, AddressbookContact | Extension):
        _append_raw(parent, item.raw if isinstance(item, AddressbookContact) else item.xml)
        return
    if isinstance(item, Entry):
        element = xml.sub(parent, RESOURCE_LISTS_NS, "entry")
        element.set("uri", item.uri)
    elif isinstance(item, EntryRef):
        element = xml.sub(parent, RESOURCE_LISTS_NS, "entry-ref")
        element.set("ref", item.ref)
    else:
        element = xml.sub(parent, RESOURCE_LISTS_NS, "external")
        if item.anchor is not None:
            element.set("anchor", item.anchor)
    _write_display_name(element, item.display_name)
    for extension in item.extensions:
        _append_raw(element, extension.xml)


def write_list(parent: xml.Element, resource_list: ResourceList) -> xml.Element:
    """Append `resource_list` as a `<list>` under `parent` (rls-services reuses it)."""
    element = xml.sub(parent, RESOURCE_LISTS_NS, "list")
    if resource_list.name is not None:
        element.set("name", resource_list.name)
    _write_display_name(element, resource_list.display_name)
    for item in resource_list.items:
        _write_item(element, item)
    return element


def build(document: ResourceLists) -> bytes:
    """The application/resource-lists+xml body for `document`."""
    root = etree.Element(
        xml.qname(RESOURCE_LISTS_NS, "resource-lists"), nsmap={None: RESOURCE_LISTS_NS}
    )
    for resource_list in document.lists:
        write_list(root, resource_list)
    return xml.serialise(root)
