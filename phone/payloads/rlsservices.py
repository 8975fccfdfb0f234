"""RLS services (RFC 4826 §4): the list URIs a resource list server answers for.

Each `<service uri>` is a SIP URI one can SUBSCRIBE to (RFC 4662); its members
come either from a `<resource-list>` (an absolute XCAP URI of a `<list>` in a
resource-lists document) or from a `<list>` written inline. `<packages>` says
which event packages the service serves (`presence`, `dialog`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from phone.payloads import resourcelists, xml
from phone.payloads.error import PayloadError
from phone.payloads.resourcelists import RESOURCE_LISTS_NS, Extension, ResourceList

RLS_SERVICES_NS = "urn:ietf:params:xml:ns:rls-services"
CONTENT_TYPE = "application/rls-services+xml"
AUID = "rls-services"
DOCUMENT = "rls-services"


@dataclass(frozen=True)
class Service:
    """One `<service>`: exactly one of `resource_list` (a URI) and `list` (inline)."""

    uri: str
    resource_list: str | None = None
    list: ResourceList | None = None
    packages: tuple[str, ...] | None = None
    extensions: tuple[Extension, ...] = ()

    def serves(self, package: str) -> bool:
        """Whether the service serves `package`; no `<packages>` means any (§4.2)."""
        return self.packages is None or package in self.packages


@dataclass(frozen=True)
class RlsServices:
    """A whole rls-services document (RFC 4826 §4.2)."""

    services: tuple[Service, ...] = ()

    def for_package(self, package: str) -> tuple[Service, ...]:
        return tuple(service for service in self.services if service.serves(package))


def _read_service(element: xml.Element) -> Service:
    resource_list = xml.child(element, RLS_SERVICES_NS, "resource-list")
    inline = xml.child(element, RLS_SERVICES_NS, "list")
    if (resource_list is None) == (inline is None):
        raise PayloadError(DOCUMENT, "a <service> needs exactly one <resource-list> or <list>")
    packages = xml.child(element, RLS_SERVICES_NS, "packages")
    return Service(
        uri=xml.required_attr(element, "uri", DOCUMENT),
        resource_list=None if resource_list is None else xml.text(resource_list),
        list=None if inline is None else resourcelists.read_list(inline),
        packages=None
        if packages is None
        else tuple(xml.text(p) or "" for p in xml.children(packages, RLS_SERVICES_NS, "package")),
        extensions=tuple(
            Extension(resourcelists.canonical(child))
            for child in xml.children(element)
            if xml.namespace_of(child) != RLS_SERVICES_NS
        ),
    )


def parse(data: bytes, *, limit: int = xml.MULTIPART_LIMIT) -> RlsServices:
    """Parse an application/rls-services+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=RLS_SERVICES_NS, root="rls-services", limit=limit
    )
    return RlsServices(
        services=tuple(_read_service(e) for e in xml.children(root, RLS_SERVICES_NS, "service"))
    )


def build(document: RlsServices) -> bytes:
    """The application/rls-services+xml body for `document`."""
    root = etree.Element(
        xml.qname(RLS_SERVICES_NS, "rls-services"),
        nsmap={None: RLS_SERVICES_NS, "rl": RESOURCE_LISTS_NS},
    )
    for service in document.services:
        element = xml.sub(root, RLS_SERVICES_NS, "service")
        element.set("uri", service.uri)
        if service.list is not None:
            inline = resourcelists.write_list(element, service.list)
            inline.tag = xml.qname(RLS_SERVICES_NS, "list")
        else:
            xml.sub(element, RLS_SERVICES_NS, "resource-list", service.resource_list or "")
        if service.packages is not None:
            packages = xml.sub(element, RLS_SERVICES_NS, "packages")
            for package in service.packages:
                xml.sub(packages, RLS_SERVICES_NS, "package", package)
        for extension in service.extensions:
            element.append(xml.parse_any(extension.xml, document=DOCUMENT))
    return xml.serialise(root)
