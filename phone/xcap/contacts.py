"""The contacts of a resource-lists document: who the buttons show, in order.

A list's contacts are its entries and those of its nested lists, in document
order (RFC 4826 §3.2), plus what its `entry-ref`s and `external`s point at
when that is in the same document (OMA's `oma_allcontacts` is made of
`external`s to the other lists; Blink writes them so), plus Blink's address
book `<contact>`s. A URI seen twice keeps its first place and the first name
it had; a list reached twice (OMA's lists are, a list may name itself) is
walked once. References to other documents or servers, or to nothing, are
returned in `elsewhere` for the caller to fetch or ignore.
"""

from __future__ import annotations

from dataclasses import dataclass

from phone.payloads.resourcelists import (
    AddressbookContact,
    DisplayName,
    Entry,
    EntryRef,
    External,
    ResourceList,
    ResourceLists,
)
from phone.xcap.selector import DocumentSelector, SelectorError, XcapUri, parse_uri


@dataclass(frozen=True)
class Contact:
    uri: str
    name: str | None = None


@dataclass(frozen=True)
class ListContacts:
    contacts: tuple[Contact, ...]
    elsewhere: tuple[str, ...] = ()


def _name(text: str | None) -> str | None:
    return (text.strip() or None) if text is not None else None


def _label(display_name: DisplayName | None) -> str | None:
    return None if display_name is None else _name(display_name.text)


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _select(document: ResourceLists, uri: XcapUri) -> ResourceList | Entry | None:
    """The list or entry a node selector points at, within `document`."""
    node = uri.node
    if node is None or node.terminal is not None or _local(node.steps[0].name) != "resource-lists":
        return None
    current: ResourceLists | ResourceList = document
    for number, step in enumerate(node.steps[1:], 2):
        kind = _local(step.name)
        children: list[ResourceList | Entry]
        if kind == "list":
            lists = current.lists if isinstance(current, ResourceLists) else current.lists()
            children = list(lists)
            key = "name"
        elif kind == "entry" and isinstance(current, ResourceList) and number == len(node.steps):
            children = [item for item in current.items if isinstance(item, Entry)]
            key = "uri"
        else:
            return None
        if step.attribute is not None:
            attribute, value = step.attribute
            if attribute != key:
                return None
            children = [c for c in children if getattr(c, key) == value]
        if step.position is not None:
            children = children[step.position - 1 : step.position]
        if len(children) != 1:
            return None
        found = children[0]
        if isinstance(found, Entry):
            return found
        current = found
    return current if isinstance(current, ResourceList) else None


def list_contacts(
    document: ResourceLists, list_name: str | None, *, root: str, here: DocumentSelector
) -> ListContacts | None:
    """The contacts of the top-level list `list_name` of `document` (None: of every
    list, in document order; None back when there is no such list). `document`
    lives at `here` below the XCAP `root`, which tells references into it from
    others."""
    if list_name is None:
        resource_list: ResourceList | None = ResourceList(items=document.lists)
    else:
        resource_list = document.list(list_name)
    if resource_list is None:
        return None
    contacts: dict[str, Contact] = {}
    elsewhere: list[str] = []

    def add(uri: str | None, name: str | None) -> None:
        if uri and uri not in contacts:
            contacts[uri] = Contact(uri, name)

    walked: set[int] = set()

    def follow(reference: str, name: str | None) -> None:
        try:
            target = parse_uri(reference, root)
        except SelectorError:
            target = None
        found = None if target is None or target.document != here else _select(document, target)
        if found is None:
            if reference not in elsewhere:
                elsewhere.append(reference)
        elif isinstance(found, Entry):
            add(found.uri, name or _label(found.display_name))
        else:
            walk(found)

    def walk(current: ResourceList) -> None:
        if id(current) in walked:  # a list that refers to itself, or twice to one list
            return
        walked.add(id(current))
        for item in current.items:
            if isinstance(item, Entry):
                add(item.uri, _label(item.display_name))
            elif isinstance(item, AddressbookContact):
                add(item.uri, _name(item.name))
            elif isinstance(item, ResourceList):
                walk(item)
            elif isinstance(item, EntryRef):
                follow(item.ref, _label(item.display_name))
            elif isinstance(item, External) and item.anchor:
                follow(item.anchor, None)

    walk(resource_list)
    return ListContacts(tuple(contacts.values()), tuple(elsewhere))
