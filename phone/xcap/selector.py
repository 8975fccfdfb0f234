"""XCAP URIs (RFC 4825 §6): document selectors, node selectors, namespace bindings.

An XCAP URI is `<root>/<auid>/users/<xui>/<document>` (or `/global/` for
documents every user shares), optionally followed by `/~~/` and a node
selector: XPath-like steps (`list[@name="friends"]`, `entry[3]`, `*`) and a
terminal `@attribute` or `namespace::*`. Element names without a prefix are in
the application's default namespace; prefixed names need bindings, which ride
in the query as `?xmlns(p=urn:...)` (§6.4).

Every piece is percent-encoded as a path segment (RFC 3986 `pchar`): `[`, `]`,
`"`, space, `?`, `#` and a `/` inside an attribute value are escaped, `:`,
`@`, `=` and `'` are not (§6.3). `parse_uri` reads an XCAP URI back, as found
in an `entry-ref` or an `external` anchor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

SEPARATOR = "~~"
SEGMENT_SAFE = "!$&'()*+,;=:@"
QUERY_SAFE = SEGMENT_SAFE + "/?"


class SelectorError(ValueError):
    """A selector that cannot be built or read (a bad name, an unbalanced predicate)."""


_QNAME = re.compile(r"^(?:[A-Za-z_][\w.\-]*:)?[A-Za-z_][\w.\-]*$|^\*$")


def _segment(text: str) -> str:
    return quote(text, safe=SEGMENT_SAFE)


@dataclass(frozen=True)
class DocumentSelector:
    """Which document: an application (`auid`), a user (`xui`, None for the global
    tree) and a document path below it (`index`, or `dir/name`)."""

    auid: str
    xui: str | None = None
    document: str = "index"

    def __post_init__(self) -> None:
        if not self.auid or "/" in self.auid or not self.document:
            raise SelectorError(f"bad document selector {self.auid!r}/{self.document!r}")

    @property
    def path(self) -> str:
        tree = "global" if self.xui is None else f"users/{_segment(self.xui)}"
        document = "/".join(_segment(part) for part in self.document.split("/"))
        return f"{_segment(self.auid)}/{tree}/{document}"


def _att_value(value: str) -> str:
    """An XML AttValue (XML 1.0 production 10): `&` and `<` as references, in
    double quotes, or single quotes when the value has double ones, or with
    `&quot;` when it has both."""
    escaped = value.replace("&", "&amp;").replace("<", "&lt;")
    if '"' not in value:
        return f'"{escaped}"'
    if "'" not in value:
        return f"'{escaped}'"
    return '"' + escaped.replace('"', "&quot;") + '"'


def _unescape(value: str) -> str:
    return (
        value.replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&amp;", "&")
    )


@dataclass(frozen=True)
class Step:
    """One location step: an element by name (or `*`), its position among
    siblings of that name (1-based), and an attribute it must have."""

    name: str
    position: int | None = None
    attribute: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not _QNAME.match(self.name):
            raise SelectorError(f"not an element name: {self.name!r}")
        if self.position is not None and self.position < 1:
            raise SelectorError(f"positions start at 1, not {self.position}")
        if self.attribute is not None and not _QNAME.match(self.attribute[0]):
            raise SelectorError(f"not an attribute name: {self.attribute[0]!r}")

    def __str__(self) -> str:
        text = self.name
        if self.position is not None:
            text += f"[{self.position}]"
        if self.attribute is not None:
            name, value = self.attribute
            text += f"[@{name}={_att_value(value)}]"
        return text

    @property
    def encoded(self) -> str:
        return quote(str(self), safe=SEGMENT_SAFE)


@dataclass(frozen=True)
class NodeSelector:
    """A node inside a document: element steps, then optionally a terminal
    `@attribute` or `namespace::*`, with the prefixes the steps use."""

    steps: tuple[Step, ...]
    terminal: str | None = None
    namespaces: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.steps:
            raise SelectorError("a node selector needs at least one step")
        terminal = self.terminal
        attribute = terminal is not None and terminal.startswith("@") and _QNAME.match(terminal[1:])
        if terminal not in (None, "namespace::*") and not attribute:
            raise SelectorError(f"not a terminal selector: {terminal!r}")

    def __str__(self) -> str:
        text = "/".join(str(step) for step in self.steps)
        return text if self.terminal is None else f"{text}/{self.terminal}"

    @property
    def path(self) -> str:
        encoded = "/".join(step.encoded for step in self.steps)
        return encoded if self.terminal is None else f"{encoded}/{_segment(self.terminal)}"

    @property
    def query(self) -> str:
        """The namespace bindings as an XPointer `xmlns()` query (§6.4), or ""."""
        bindings = "".join(f"xmlns({prefix}={uri})" for prefix, uri in self.namespaces)
        return quote(bindings, safe=QUERY_SAFE)

    def child(self, step: str | Step) -> NodeSelector:
        """The selector of a child element of this one (`step` as text or a `Step`)."""
        if self.terminal is not None:
            raise SelectorError("an attribute has no children")
        parsed = step if isinstance(step, Step) else parse_step(step)
        return NodeSelector((*self.steps, parsed), None, self.namespaces)

    def attribute(self, name: str) -> NodeSelector:
        return NodeSelector(self.steps, f"@{name}", self.namespaces)


@dataclass(frozen=True)
class XcapUri:
    """A document selector and an optional node selector: everything after the root."""

    document: DocumentSelector
    node: NodeSelector | None = None

    def at(self, node: NodeSelector | None) -> XcapUri:
        """The same document, another node (None: the whole document)."""
        return XcapUri(self.document, node)

    def url(self, root: str) -> str:
        text = f"{root.rstrip('/')}/{self.document.path}"
        if self.node is not None:
            text += f"/{SEPARATOR}/{self.node.path}"
            if self.node.query:
                text += f"?{self.node.query}"
        return text


def element(*steps: str | Step, namespaces: dict[str, str] | None = None) -> NodeSelector:
    """A node selector from steps written as text (`"list[@name=\\"x\\"]"`) or `Step`s."""
    parsed = tuple(step if isinstance(step, Step) else parse_step(step) for step in steps)
    return NodeSelector(parsed, None, tuple((namespaces or {}).items()))


_STEP = re.compile(
    r"""^(?P<name>[^\[\]]+)
    (?:\[(?P<position>\d+)\])?
    (?:\[@(?P<attr>[^=\]]+)=(?P<value>"[^"]*"|'[^']*')\])?$""",
    re.VERBOSE,
)


def parse_step(text: str) -> Step:
    match = _STEP.match(text)
    if match is None:
        raise SelectorError(f"not a node selector step: {text!r}")
    value = match["value"]
    return Step(
        name=match["name"],
        position=None if match["position"] is None else int(match["position"]),
        attribute=None if value is None else (match["attr"], _unescape(value[1:-1])),
    )


def _split_steps(text: str) -> list[str]:
    """Split on `/` outside quoted attribute values."""
    parts: list[str] = []
    current: list[str] = []
    quote_char = ""
    for char in text:
        if quote_char:
            quote_char = "" if char == quote_char else quote_char
        elif char in "\"'":
            quote_char = char
        elif char == "/":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote_char:
        raise SelectorError(f"unbalanced quotes in {text!r}")
    parts.append("".join(current))
    return parts


_XMLNS = re.compile(r"xmlns\((?P<prefix>[^=()]+)=(?P<uri>[^()]*)\)")


def parse_node(path: str, query: str = "") -> NodeSelector:
    """A node selector from its percent-encoded URI form (the part after `~~/`)."""
    parts = _split_steps(unquote(path))
    terminal = parts[-1] if parts and (parts[-1].startswith("@") or "::" in parts[-1]) else None
    steps = parts[:-1] if terminal is not None else parts
    namespaces = tuple((m["prefix"], m["uri"]) for m in _XMLNS.finditer(unquote(query)))
    return NodeSelector(tuple(parse_step(step) for step in steps), terminal, namespaces)


def parse_uri(uri: str, root: str) -> XcapUri:
    """An absolute XCAP URI below `root`, or one relative to it (an `entry-ref`)."""
    parts = urlsplit(uri)
    root_path = urlsplit(root).path.rstrip("/")
    path = parts.path
    if parts.scheme:
        if not path.startswith(root_path + "/"):
            raise SelectorError(f"{uri!r} is not below the XCAP root {root!r}")
        path = path[len(root_path) + 1 :]
    path = path.lstrip("/")
    document_part, separator, node_part = path.partition(f"/{SEPARATOR}/")
    segments = document_part.split("/")
    if len(segments) < 3:
        raise SelectorError(f"not an XCAP document URI: {uri!r}")
    auid = unquote(segments[0])
    if segments[1] == "global":
        selector = DocumentSelector(auid, None, unquote("/".join(segments[2:])))
    elif segments[1] == "users" and len(segments) >= 4:
        selector = DocumentSelector(auid, unquote(segments[2]), unquote("/".join(segments[3:])))
    else:
        raise SelectorError(f"not an XCAP document URI: {uri!r}")
    return XcapUri(selector, parse_node(node_part, parts.query) if separator else None)
