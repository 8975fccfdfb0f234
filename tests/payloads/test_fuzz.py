"""Fuzzing every parser: only PayloadError may escape, nothing may hang.

Each parser gets mutated real documents (byte flips, cuts, splices, and
tokens chosen to reach the enum, integer, date and entity paths) and random
bytes: 9 targets x 1,150 examples, over 10,000 in all. A document that parses
must also survive build -> parse unchanged. Measured on the 2-core CI box:
about 20 s for the whole file.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone.payloads import (
    PayloadError,
    conference,
    cpim,
    dialoginfo,
    iscomposing,
    pidf,
    rlmi,
    watcherinfo,
    xcapdiff,
)
from phone.payloads.pidf import BasicStatus
from phone.payloads.rlmi import BodyPart, Instance, InstanceState, Resource, ResourceList
from tests.payloads.sampledata import RFC4662_NOTIFY_CONTENT_TYPE, kamailio_notify, sample

MUTATED_EXAMPLES = 900
RANDOM_EXAMPLES = 250
HANG_SECONDS = 2.0


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


TOKENS = [
    b"&",
    b"<",
    b">",
    b'"',
    b"'",
    b"]]>",
    b"\x00",
    b"\xff\xfe",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"&lol;",
    b"<!--c-->",
    b"<?pi x?>",
    b"<![CDATA[<x>]]>",
    b"<!DOCTYPE x>",
    b"-1",
    b"0",
    b"1.5",
    b"99999999999999999999999",
    b"true",
    b"NaN",
    b"1e9",
    b"",
    b" ",
    b"\r\n",
    b"\n\n",
    b":",
    b";",
    b"\\",
    b"\\r",
    b"2026-13-45T25:61:00Z",
    b"2026-11-24T20:00:00+00:00:30",
    b"9999-12-31T23:59:59-23:59",
    b'xml:lang="\xe2\x98\x95"',
    b"open",
    b"closed",
    b"active",
    b"pending",
    b"terminated",
    b"idle",
    b"partial",
    b"full",
    b"deleted",
    b"confirmed",
    b"early",
    b"on-hold",
    b"unknown",
    b"busy",
    b"<rpid:unknown/>",
    b"<rpid:busy/>",
    b"<note>x</note>",
    b"</tuple>",
    b"<tuple id='x'><status/></tuple>",
    b'cid="nowhere"',
    b"--",
    b"--50UBfW7LSCVLtggUPe5z",
    b"--50UBfW7LSCVLtggUPe5z--",
    b"Content-ID: <x>\r\n",
    b"Content-Type: multipart/related;boundary=q\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"From: <sip:x>\r\n",
    b"NS: p <u>\r\n",
    b"Subject:;lang=fr x\r\n",
]


# Values that keep a document well-formed but probe the typed fields.
VALUES = [
    b"",
    b" ",
    b"x",
    b"-1",
    b"0",
    b"1",
    b"1.0",
    b"0.65",
    b"2",
    b"NaN",
    b"1e9",
    b"007",
    b"\xd9\xa3",
    b"99999999999999999999999",
    b"true",
    b"false",
    b"yes",
    b"2005-10-27T16:49:29Z",
    b"2004-10-21T13:20:00.000-05:00",
    b"2026-02-30T00:00:00Z",
    b"2026-11-24",
    b"T",
    b"open",
    b"closed",
    b"active",
    b"pending",
    b"terminated",
    b"waiting",
    b"idle",
    b"full",
    b"partial",
    b"deleted",
    b"confirmed",
    b"early",
    b"trying",
    b"initiator",
    b"recipient",
    b"remote-bye",
    b"connected",
    b"on-hold",
    b"dialed-in",
    b"departed",
    b"sendrecv",
    b"busy",
    b"unknown",
    b"subscribe",
    b"approved",
    b"presence",
    b"sip:x@example.test",
    b"&amp;",
    b"&#x2603;",
    b"\xe2\x98\x95",
    b"&lt;x&gt;",
]
# An attribute value, or the text between two tags.
FIELD = re.compile(rb'="[^"]*"|>[^<]+<')
ATTRIBUTE = re.compile(rb' [\w:.-]+="[^"]*"')


@st.composite
def mutations(draw: st.DrawFn, documents: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(documents)))
    structural = ["value", "value", "value", "drop"]
    raw = ["flip", "token", "delete", "truncate", "splice", "value"]
    operations = structural if draw(st.booleans()) else raw
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(operations))
        position = draw(st.integers(0, len(data)))
        if operation in ("value", "drop"):
            spans = list((FIELD if operation == "value" else ATTRIBUTE).finditer(data))
            if not spans:
                continue
            span = draw(st.sampled_from(spans))
            start, end = span.start() + (1 if data[span.start()] == ord(">") else 2), span.end() - 1
            if operation == "drop":
                start, end = span.start(), span.end()
            data[start:end] = draw(st.sampled_from(VALUES)) if operation == "value" else b""
        elif operation == "flip" and data:
            index = min(position, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif operation == "token":
            width = draw(st.integers(0, 12))
            data[position : position + width] = draw(st.sampled_from(TOKENS))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif operation == "truncate":
            del data[position:]
        else:
            start = draw(st.integers(0, len(data)))
            data[position:position] = data[start : start + draw(st.integers(1, 200))]
    return bytes(data)


class Hang(Exception):
    pass


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts a parser stuck in a loop."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"parser still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _notify_samples() -> list[bytes]:
    resources = tuple(
        Resource(
            f"sip:user{i}@example.test",
            instances=(Instance(f"i{i}", InstanceState.ACTIVE, cid=f"c{i}@rls"),),
        )
        for i in range(3)
    )
    parts = [
        BodyPart(
            f"c{i}@rls",
            pidf.CONTENT_TYPE,
            pidf.build_user_presence(f"sip:user{i}@example.test", BasicStatus.OPEN, note="hi"),
        )
        for i in range(3)
    ]
    content_type, body = rlmi.build_notify(
        ResourceList("sip:list@example.test", 0, True, resources=resources),
        parts,
        boundary="50UBfW7LSCVLtggUPe5z",
        start="nXYxAE@pres.example.com",
    )
    notifies = [(RFC4662_NOTIFY_CONTENT_TYPE, sample("rfc4662-notify.mime")), (content_type, body)]
    notifies += [kamailio_notify(number) for number in (1, 2, 3)]
    # The Content-Type header rides on the first line, so it gets mutated too.
    return [f"{header}\n".encode() + payload for header, payload in notifies]


def _parse_notify(data: bytes) -> rlmi.ListNotification:
    header, _, body = data.partition(b"\n")
    return rlmi.parse_notify(header.decode("latin-1"), body)


Target = tuple[Callable[[bytes], Any], Callable[[Any], bytes] | None, list[bytes]]

TARGETS: dict[str, Target] = {
    "pidf": (
        pidf.parse,
        pidf.build,
        [
            sample(n)
            for n in (
                "rfc3863-basic.xml",
                "rfc3863-extended.xml",
                "rfc4480-rpid.xml",
                "phone-published.xml",
                "blink-pidf.xml",
            )
        ],
    ),
    "rlmi": (rlmi.parse, rlmi.build, [sample("rfc4662-rlmi.xml")]),
    "rls-notify": (_parse_notify, None, _notify_samples()),
    "watcherinfo": (
        watcherinfo.parse,
        watcherinfo.build,
        [sample("rfc3858-watcherinfo.xml"), sample("kamailio-winfo-2.xml")],
    ),
    "dialoginfo": (
        dialoginfo.parse,
        dialoginfo.build,
        [sample("rfc4235-trying.xml"), sample("rfc4235-confirmed.xml")],
    ),
    "conference": (
        conference.parse,
        conference.build,
        [sample("rfc4575-conference.xml"), sample("sylkserver-conference.xml")],
    ),
    "xcapdiff": (xcapdiff.parse, xcapdiff.build, [sample("rfc5874-xcapdiff.xml")]),
    "iscomposing": (
        iscomposing.parse,
        iscomposing.build,
        [sample("rfc3994-active.xml"), sample("rfc3994-idle.xml")],
    ),
    "cpim": (cpim.parse, None, [sample("rfc3862-message.cpim"), sample("blink-message.cpim")]),
}


def _check(target: Target, data: bytes) -> None:
    parse, build, _ = target
    with bounded(HANG_SECONDS):
        try:
            parsed = parse(data)
        except PayloadError:
            return
        if build is not None:
            assert parse(build(parsed)) == parsed


def fuzz_mutated(target: Target, examples: int) -> None:
    """`examples` mutations of the target's documents (test_fuzz_xcap.py uses it too)."""

    @fuzz(examples)
    @given(mutations(target[2]))
    def run(data: bytes) -> None:
        _check(target, data)

    run()


def fuzz_random(target: Target, examples: int) -> None:
    """`examples` random byte strings."""

    @fuzz(examples)
    @given(st.binary(max_size=2048))
    def run(data: bytes) -> None:
        _check(target, data)

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_documents(name: str) -> None:
    fuzz_mutated(TARGETS[name], MUTATED_EXAMPLES)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_random_bytes(name: str) -> None:
    fuzz_random(TARGETS[name], RANDOM_EXAMPLES)


@fuzz(300)
@given(st.text(max_size=200), st.binary(max_size=512))
def test_rls_notify_content_type_and_body(content_type: str, body: bytes) -> None:
    with bounded(HANG_SECONDS), suppress(PayloadError):
        rlmi.parse_notify(content_type, body)
