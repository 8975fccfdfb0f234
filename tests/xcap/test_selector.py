"""XCAP URIs (RFC 4825 §6): document selectors, node selectors, escaping, bindings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone.xcap.selector import (
    DocumentSelector,
    NodeSelector,
    SelectorError,
    Step,
    XcapUri,
    element,
    parse_uri,
)

ROOT = "https://xcap.example.com/xcap-root"
LISTS = DocumentSelector("resource-lists", "sip:joe@example.com")


def test_document_selectors() -> None:
    assert XcapUri(LISTS).url(ROOT) == f"{ROOT}/resource-lists/users/sip:joe@example.com/index"
    assert XcapUri(LISTS).url(ROOT + "/") == XcapUri(LISTS).url(ROOT)
    caps = DocumentSelector("xcap-caps", None)
    assert XcapUri(caps).url(ROOT) == f"{ROOT}/xcap-caps/global/index"
    nested = DocumentSelector("oma_status-icon", "sip:a b@x", "dir/my icon")
    assert nested.path == "oma_status-icon/users/sip:a%20b@x/dir/my%20icon"
    odd = DocumentSelector("resource-lists", "sip:joe/x?y#z@example.com")
    assert odd.path == "resource-lists/users/sip:joe%2Fx%3Fy%23z@example.com/index"


def test_rfc4825_node_selector_is_percent_encoded() -> None:
    """The RFC's example selector: brackets and quotes escaped, `@`, `:` and `=` not."""
    node = element("resource-lists", 'list[@name="friends"]', 'entry[@uri="sip:bill@example.com"]')
    assert str(node) == 'resource-lists/list[@name="friends"]/entry[@uri="sip:bill@example.com"]'
    assert XcapUri(LISTS, node).url(ROOT) == (
        f"{ROOT}/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/"
        "list%5B@name=%22friends%22%5D/entry%5B@uri=%22sip:bill@example.com%22%5D"
    )


def test_positions_attributes_and_terminals() -> None:
    node = element("resource-lists", "list[2]", Step("entry", 3, ("uri", "sip:x"))).attribute("uri")
    assert str(node) == 'resource-lists/list[2]/entry[3][@uri="sip:x"]/@uri'
    namespaces = NodeSelector(node.steps[:1], "namespace::*")
    assert namespaces.path == "resource-lists/namespace::*"


def test_values_with_quotes_slashes_and_spaces() -> None:
    assert str(Step("list", attribute=("name", 'say "hi"'))) == "list[@name='say \"hi\"']"
    both = Step("list", attribute=("name", 'it\'s "x" & y'))
    assert str(both) == 'list[@name="it\'s &quot;x&quot; &amp; y"]'
    references = Step("list", attribute=("name", "&quot; <"))
    assert str(references) == 'list[@name="&amp;quot; &lt;"]'
    slash = Step("list", attribute=("name", "a/b c"))
    assert slash.encoded == "list%5B@name=%22a%2Fb%20c%22%5D"


def test_namespace_bindings_ride_in_the_query() -> None:
    rules = DocumentSelector("pres-rules", "sip:joe@example.com")
    node = element(
        "cr:ruleset",
        'cr:rule[@id="a"]',
        namespaces={"cr": "urn:ietf:params:xml:ns:common-policy"},
    )
    url = XcapUri(rules, node).url(ROOT)
    assert url.endswith(
        "/~~/cr:ruleset/cr:rule%5B@id=%22a%22%5D?xmlns(cr=urn:ietf:params:xml:ns:common-policy)"
    )
    assert parse_uri(url, ROOT) == XcapUri(rules, node)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Step("a b"),
        lambda: Step("entry", 0),
        lambda: Step("entry", attribute=("u ri", "x")),
        lambda: NodeSelector(()),
        lambda: NodeSelector((Step("a"),), "@"),
        lambda: element('list[@name="x]'),
        lambda: DocumentSelector("a/b"),
        lambda: parse_uri("http://elsewhere/x/resource-lists/users/u/index", ROOT),
        lambda: parse_uri("resource-lists/index", ROOT),
        lambda: element("list").attribute("name").child("entry"),
    ],
)
def test_malformed_selectors(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SelectorError):
        bad()


def test_relative_and_absolute_uris_read_back() -> None:
    """An `entry-ref` is relative to the root, an `external` anchor absolute."""
    node = element("resource-lists", 'list[@name="l1"]', 'entry[@uri="sip:petri@example.com"]')
    uri = XcapUri(LISTS, node)
    relative = uri.url("")[1:]
    assert parse_uri(relative, ROOT) == uri
    assert parse_uri(uri.url(ROOT), ROOT) == uri
    assert parse_uri(f"{ROOT}/xcap-caps/global/index", ROOT) == XcapUri(
        DocumentSelector("xcap-caps", None)
    )
    unescaped = 'resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list[@name="a/b"]'
    assert parse_uri(unescaped, ROOT).node == element("resource-lists", 'list[@name="a/b"]')


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
values = st.lists(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["&quot;", "&amp;", "/"]),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            Step,
            names,
            st.none() | st.integers(1, 99),
            st.none() | st.tuples(names, values),
        ),
        min_size=1,
        max_size=4,
    ),
    st.none() | names.map(lambda n: f"@{n}"),
    values.filter(bool),
)
def test_any_selector_survives_the_uri(steps: list[Step], terminal: str | None, xui: str) -> None:
    uri = XcapUri(DocumentSelector("resource-lists", xui), NodeSelector(tuple(steps), terminal))
    assert parse_uri(uri.url(ROOT), ROOT) == uri
