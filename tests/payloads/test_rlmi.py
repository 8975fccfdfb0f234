"""RLMI documents (RFC 4662 §5) and RLS NOTIFY multipart bodies (§4.3)."""

from __future__ import annotations

import pytest

from phone.payloads import PayloadError, VersionGap, pidf, rlmi
from phone.payloads.pidf import BasicStatus
from phone.payloads.rlmi import (
    BodyPart,
    Instance,
    InstanceState,
    ListView,
    Name,
    Resource,
    ResourceList,
)
from phone.payloads.rpid import Activity
from tests.payloads.sampledata import RFC4662_NOTIFY_CONTENT_TYPE, kamailio_notify, sample

LIST_URI = "sip:friends@example.test"


def test_rfc4662_list_example():
    found = rlmi.parse(sample("rfc4662-rlmi.xml"))
    assert found.uri == "sip:adam-friends@pres.example.com"
    assert found.version == 1
    assert found.full_state is True
    assert found.names == (Name("Buddy List at COM", "en"), Name("Liste der Freunde an COM", "de"))
    bob = found.resources[0]
    assert bob.uri == "sip:bob@example.com"
    assert bob.names == (Name("Bob Smith"),)
    assert bob.instances == (
        Instance("juwigmtboe", InstanceState.ACTIVE, cid="bUZBsM@pres.example.com"),
    )
    assert found.resources[2].instances == ()
    assert rlmi.parse(rlmi.build(found)) == found


def test_rfc4662_notify_with_nested_list():
    notification = rlmi.parse_notify(RFC4662_NOTIFY_CONTENT_TYPE, sample("rfc4662-notify.mime"))
    assert notification.list.uri == "sip:adam-friends@pres.example.com"
    assert set(notification.parts) == {
        "bUZBsM@pres.example.com",
        "ZvSvkz@pres.example.com",
        "1KQhyE@pres.example.com",
    }
    bob = notification.parts["bUZBsM@pres.example.com"]
    assert bob.content_type == "application/pidf+xml"
    assert bob.body.startswith(b"<?xml") and bob.body.endswith(b"</presence>")
    assert bob.presence is not None and bob.presence.basic is BasicStatus.CLOSED
    dave = notification.parts["ZvSvkz@pres.example.com"].presence
    assert dave is not None and dave.tuples[0].contact is not None
    nested = notification.parts["1KQhyE@pres.example.com"].nested
    assert nested is not None
    assert nested.list.uri == "sip:adam-friends@example.org"
    assert nested.list.full_state is False
    cathy = nested.parts["Cdk5Hf@example.org"].presence
    assert cathy is not None and cathy.entity == "sip:cathy@example.org"
    ed = notification.list.resources[2]
    assert ed.instances[0].state is InstanceState.PENDING


def _presence(uri: str, basic: BasicStatus) -> bytes:
    return pidf.build_user_presence(uri, basic, note="ünïcode ✓")


def _notify(version: int, full: bool, entries: list[tuple[str, InstanceState, BasicStatus | None]]):
    resources = []
    parts = []
    for index, (uri, state, basic) in enumerate(entries):
        cid = f"part{version}-{index}@rls.example.test" if basic is not None else None
        resources.append(
            Resource(uri, (Name(uri.split(":")[1]),), (Instance(f"i{index}", state, cid=cid),))
        )
        if basic is not None:
            parts.append(BodyPart(cid, pidf.CONTENT_TYPE, _presence(uri, basic)))
    return rlmi.build_notify(
        ResourceList(LIST_URI, version, full, resources=tuple(resources)),
        parts,
        boundary=f"b{version}xyz",
    )


def test_build_and_parse_notify_round_trip():
    content_type, body = _notify(
        0,
        True,
        [
            ("sip:bob@example.test", InstanceState.ACTIVE, BasicStatus.OPEN),
            ("sip:carol@example.test", InstanceState.PENDING, None),
        ],
    )
    notification = rlmi.parse_notify(content_type, body)
    assert notification.list.resources[1].instances[0].cid is None
    (part,) = notification.parts.values()
    assert part.body == _presence("sip:bob@example.test", BasicStatus.OPEN)
    assert part.presence == pidf.parse(part.body)


def test_list_view_full_then_partial_updates():
    view = ListView()
    assert view.apply(
        rlmi.parse_notify(
            *_notify(
                0,
                True,
                [
                    ("sip:bob@example.test", InstanceState.ACTIVE, BasicStatus.OPEN),
                    ("sip:carol@example.test", InstanceState.PENDING, None),
                ],
            )
        )
    )
    assert view.presence("sip:bob@example.test").basic is BasicStatus.OPEN
    assert view.presence("sip:carol@example.test") is None
    assert view.apply(
        rlmi.parse_notify(
            *_notify(
                1, False, [("sip:carol@example.test", InstanceState.ACTIVE, BasicStatus.CLOSED)]
            )
        )
    )
    assert view.version == 1
    assert view.presence("sip:carol@example.test").basic is BasicStatus.CLOSED
    assert view.presence("sip:bob@example.test").basic is BasicStatus.OPEN
    assert view.apply(
        rlmi.parse_notify(
            *_notify(2, False, [("sip:bob@example.test", InstanceState.TERMINATED, None)])
        )
    )
    assert view.presence("sip:bob@example.test") is None
    assert [r.uri for r in view.resources] == ["sip:bob@example.test", "sip:carol@example.test"]
    # Full state replaces: bob is gone from the list.
    assert view.apply(
        rlmi.parse_notify(
            *_notify(3, True, [("sip:carol@example.test", InstanceState.ACTIVE, BasicStatus.OPEN)])
        )
    )
    assert [r.uri for r in view.resources] == ["sip:carol@example.test"]
    assert view.parts_of("sip:bob@example.test") == ()


def test_list_view_stale_and_gaps():
    view = ListView()
    first = rlmi.parse_notify(
        *_notify(0, True, [("sip:bob@example.test", InstanceState.ACTIVE, BasicStatus.OPEN)])
    )
    assert view.apply(first)
    assert view.apply(first) is False
    with pytest.raises(VersionGap) as caught:
        view.apply(
            rlmi.parse_notify(
                *_notify(
                    2, False, [("sip:bob@example.test", InstanceState.ACTIVE, BasicStatus.CLOSED)]
                )
            )
        )
    assert (caught.value.expected, caught.value.received) == (1, 2)
    assert view.version == 0
    assert view.presence("sip:bob@example.test").basic is BasicStatus.OPEN
    # Full state after a gap carries everything: accepted.
    assert view.apply(
        rlmi.parse_notify(
            *_notify(5, True, [("sip:bob@example.test", InstanceState.ACTIVE, BasicStatus.CLOSED)])
        )
    )
    assert view.version == 5


def test_partial_first_needs_resubscribe():
    with pytest.raises(VersionGap) as caught:
        ListView().apply(
            rlmi.parse_notify(
                *_notify(3, False, [("sip:bob@example.test", InstanceState.PENDING, None)])
            )
        )
    assert caught.value.expected is None
    assert isinstance(caught.value, PayloadError)


def test_other_list_on_the_view():
    view = ListView()
    view.apply(rlmi.parse_notify(*_notify(0, True, [])))
    other = ResourceList("sip:other@example.test", 1, True)
    with pytest.raises(PayloadError, match="other"):
        view.apply(rlmi.ListNotification(other))


GOOD_TYPE, GOOD_BODY = _notify(
    0, True, [("sip:bob@example.test", InstanceState.ACTIVE, BasicStatus.OPEN)]
)


@pytest.mark.parametrize(
    ("content_type", "body", "problem"),
    [
        (GOOD_TYPE, GOOD_BODY[: len(GOOD_BODY) // 2], "truncated"),
        (GOOD_TYPE, GOOD_BODY[:-12], "truncated"),
        ('multipart/related;type="application/rlmi+xml"', GOOD_BODY, "without a boundary"),
        (GOOD_TYPE.replace("b0xyz", "zzzz"), GOOD_BODY, "never appears"),
        ("application/pidf+xml", GOOD_BODY, "content type"),
        (GOOD_TYPE.replace('type="application/rlmi+xml";', ""), GOOD_BODY, "type parameter"),
        (GOOD_TYPE.replace("<rlmi>", "<nowhere>"), GOOD_BODY, "start parameter"),
        (GOOD_TYPE, GOOD_BODY.replace(b'cid="part0-0@', b'cid="gone@'), "naming no part"),
        (
            GOOD_TYPE,
            GOOD_BODY.replace(b"Content-ID: <part0-0@rls.example.test>\r\n", b""),
            "Content-ID",
        ),
        (GOOD_TYPE, GOOD_BODY.replace(b"<part0-0@rls.example.test>", b"<rlmi>"), "twice"),
        (
            GOOD_TYPE,
            GOOD_BODY.replace(b"<basic>open", b"<basic>ajar"),
            r"part <part0-0@rls\.example\.test>: PIDF: .*ajar",
        ),
        (GOOD_TYPE, GOOD_BODY.replace(b'version="0"', b'version="-1"'), "version"),
        (GOOD_TYPE + "\r\nX-Injected: 1", GOOD_BODY, "control"),
        (GOOD_TYPE, b"", "never appears"),
    ],
    ids=[
        "truncated-half",
        "truncated-close",
        "missing-boundary",
        "wrong-boundary",
        "not-multipart",
        "no-type-parameter",
        "start-nowhere",
        "cid-nowhere",
        "part-without-content-id",
        "duplicate-content-id",
        "bad-pidf-part",
        "bad-version",
        "header-injection",
        "empty-body",
    ],
)
def test_malformed_notify_bodies(content_type, body, problem):
    with pytest.raises(PayloadError, match=problem):
        rlmi.parse_notify(content_type, body)


def test_notify_size_cap():
    with pytest.raises(PayloadError, match="limit"):
        rlmi.parse_notify(GOOD_TYPE, GOOD_BODY, limit=100)


def test_deeply_nested_lists_are_refused():
    content_type, body = GOOD_TYPE, GOOD_BODY
    for depth in range(rlmi.MAX_NESTING + 2):
        boundary = f"nest{depth}"
        inner_type = content_type
        rlmi_doc = rlmi.build(
            ResourceList(
                f"sip:l{depth}@x",
                0,
                True,
                resources=(
                    Resource(
                        "sip:inner@x", instances=(Instance("i", InstanceState.ACTIVE, cid="inner"),)
                    ),
                ),
            )
        )
        body = (
            f"--{boundary}\r\nContent-ID: <root>\r\nContent-Type: application/rlmi+xml\r\n\r\n".encode()
            + rlmi_doc
            + f"\r\n--{boundary}\r\nContent-ID: <inner>\r\nContent-Type: {inner_type}\r\n\r\n".encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f'multipart/related;type="application/rlmi+xml";boundary="{boundary}"'
    with pytest.raises(PayloadError, match="nested deeper"):
        rlmi.parse_notify(content_type, body)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b'<list xmlns="urn:ietf:params:xml:ns:rlmi" version="1" fullState="true"/>', "uri"),
        (b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x" fullState="true"/>', "version"),
        (
            b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x" version="1" fullState="yes"/>',
            "fullState",
        ),
        (
            b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x" version="1" fullState="1">'
            b'<resource uri="y"><instance id="i" state="sleeping"/></resource></list>',
            "sleeping",
        ),
        (
            b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x" version="1" fullState="1">'
            b'<resource uri="y"><instance state="active"/></resource></list>',
            "'id'",
        ),
        (
            b'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x" version="1" fullState="1"><resource/></list>',
            "uri",
        ),
    ],
)
def test_malformed_rlmi(document, problem):
    with pytest.raises(PayloadError, match=problem):
        rlmi.parse(document)


def test_partial_update_of_one_instance_keeps_the_others():
    uri = "sip:bob@example.test"
    desk = BodyPart("desk0@rls", pidf.CONTENT_TYPE, _presence(uri, BasicStatus.OPEN))
    mobile = BodyPart("mobile0@rls", pidf.CONTENT_TYPE, _presence(uri, BasicStatus.CLOSED))
    both = Resource(
        uri,
        (Name("Bob"),),
        (
            Instance("desk", InstanceState.ACTIVE, cid="desk0@rls"),
            Instance("mobile", InstanceState.ACTIVE, cid="mobile0@rls"),
        ),
    )
    view = ListView()
    view.apply(
        rlmi.parse_notify(
            *rlmi.build_notify(
                ResourceList(LIST_URI, 0, True, resources=(both,)), [desk, mobile], boundary="q0"
            )
        )
    )
    assert view.presence(uri).basic is BasicStatus.CLOSED
    mobile_gone = Resource(
        uri, (), (Instance("mobile", InstanceState.TERMINATED, reason="noresource"),)
    )
    view.apply(
        rlmi.parse_notify(
            *rlmi.build_notify(
                ResourceList(LIST_URI, 1, False, resources=(mobile_gone,)), [], boundary="q1"
            )
        )
    )
    (resource,) = view.resources
    assert resource.names == (Name("Bob"),)
    assert [(i.id, i.state) for i in resource.instances] == [
        ("desk", InstanceState.ACTIVE),
        ("mobile", InstanceState.TERMINATED),
    ]
    assert [p.content_id for p in view.parts_of(uri)] == ["desk0@rls"]
    assert view.presence(uri).basic is BasicStatus.OPEN


def test_rfc2231_encoded_parameters():
    content_type = GOOD_TYPE.replace(
        'type="application/rlmi+xml"', "type*=''application%2Frlmi%2Bxml"
    )
    assert "type*=" in content_type
    assert rlmi.parse_notify(content_type, GOOD_BODY).list.uri == LIST_URI


def test_kamailio_rls_notifications_in_sequence():
    view = ListView()
    first = rlmi.parse_notify(*kamailio_notify(1))
    assert (first.list.version, first.list.full_state, first.parts) == (1, True, {})
    assert view.apply(first)
    assert [r.uri for r in view.resources] == ["sip:bob@example.test", "sip:carol@example.test"]
    assert view.presence("sip:bob@example.test") is None

    assert view.apply(rlmi.parse_notify(*kamailio_notify(2)))
    bob = view.presence("sip:bob@example.test")
    assert bob is not None
    assert bob.basic is BasicStatus.OPEN
    assert bob.activities == (Activity.BUSY,)
    assert bob.note() == "Do not disturb"
    assert bob.persons[0].rich.display_name == "Bob"
    carol = view.presence("sip:carol@example.test")
    assert carol is not None and carol.basic is BasicStatus.CLOSED

    third = rlmi.parse_notify(*kamailio_notify(3))
    assert [r.uri for r in third.list.resources] == ["sip:bob@example.test"]
    assert view.apply(third)
    bob = view.presence("sip:bob@example.test")
    assert bob is not None and bob.activities == (Activity.ON_THE_PHONE,)
    assert bob.note() == "On the phone"
    assert view.presence("sip:carol@example.test") == carol
    assert view.version == 3
    with pytest.raises(VersionGap):
        ListView().apply(third)
