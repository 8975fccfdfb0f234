"""The RFCs' XML schemas (tests/payloads/schemas/, transcribed from the RFC texts)
as lxml validators, so built documents are checked against the standard."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).parent / "schemas"

# Documents whose schema imports others by namespace: one driver schema
# imports them all, so `##other` extensions from any of them validate strictly.
_DRIVER = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>"""
_NAMESPACES = {
    "resource-lists.xsd": "urn:ietf:params:xml:ns:resource-lists",
    "rls-services.xsd": "urn:ietf:params:xml:ns:rls-services",
    "common-policy.xsd": "urn:ietf:params:xml:ns:common-policy",
    "pres-rules.xsd": "urn:ietf:params:xml:ns:pres-rules",
    "oma-common-policy.xsd": "urn:oma:xml:xdm:common-policy",
    "xcap-caps.xsd": "urn:ietf:params:xml:ns:xcap-caps",
    "xcap-error.xsd": "urn:ietf:params:xml:ns:xcap-error",
    "xcap-directory.xsd": "urn:oma:xml:xdm:xcap-directory",
}


@cache
def _schema() -> etree.XMLSchema:
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(SCHEMAS / name).as_uri()}"/>'
        for name, namespace in _NAMESPACES.items()
    )
    parser = etree.XMLParser(no_network=True)
    return etree.XMLSchema(etree.fromstring(_DRIVER.format(imports=imports), parser))


def assert_valid(document: bytes) -> None:
    """Fail with the schema's own message if `document` is not valid."""
    schema = _schema()
    tree = etree.fromstring(document)
    assert schema.validate(tree), schema.error_log.filter_from_errors()
