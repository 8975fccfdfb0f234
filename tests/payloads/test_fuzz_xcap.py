"""Fuzzing the XCAP documents' parsers the way test_fuzz.py fuzzes the others.

6 targets x (1,400 mutated + 300 random) = 10,200 cases a run: only
PayloadError may escape, nothing may hang, and a document that parses must
survive build -> parse unchanged (extensions included).
"""

from __future__ import annotations

import pytest

from phone.payloads import presrules, resourcelists, rlsservices, xcapcaps, xcapdirectory, xcaperror
from phone.payloads.xcaperror import ConflictKind, Uniqueness, XcapConflict
from tests.payloads.sampledata import sample
from tests.payloads.test_fuzz import Target, fuzz_mutated, fuzz_random

MUTATED_EXAMPLES = 1400
RANDOM_EXAMPLES = 300

TARGETS: dict[str, Target] = {
    "resourcelists": (
        resourcelists.parse,
        resourcelists.build,
        [sample("rfc4826-resource-lists.xml"), sample("blink-resource-lists.xml")],
    ),
    "rlsservices": (rlsservices.parse, rlsservices.build, [sample("rfc4826-rls-services.xml")]),
    "presrules": (
        presrules.parse,
        presrules.build,
        [sample("rfc5025-pres-rules.xml"), sample("oma-pres-rules.xml")],
    ),
    "xcapcaps": (
        xcapcaps.parse,
        xcapcaps.build,
        [xcapcaps.build(xcapcaps.XcapCaps(("resource-lists", "pres-rules"), ("x",), ("urn:a",)))],
    ),
    "xcapdirectory": (
        xcapdirectory.parse,
        xcapdirectory.build,
        [
            b'<xcap-directory xmlns="urn:oma:xml:xdm:xcap-directory"><folder auid="resource-lists">'
            b'<entry uri="http://x/r/index" etag="&quot;e1&quot;" last-modified='
            b'"2026-11-30T10:00:00Z" size="220"/></folder><folder auid="pres-rules">'
            b"<error-code>500</error-code></folder></xcap-directory>"
        ],
    ),
    "xcaperror": (
        xcaperror.parse,
        xcaperror.build,
        [
            xcaperror.build(
                XcapConflict(
                    ConflictKind.UNIQUENESS_FAILURE,
                    "taken",
                    uniqueness=(Uniqueness("a/@b", ("c", "d")),),
                )
            ),
            xcaperror.build(XcapConflict(ConflictKind.NO_PARENT, ancestor="http://x/r")),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_documents(name: str) -> None:
    fuzz_mutated(TARGETS[name], MUTATED_EXAMPLES)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_random_bytes(name: str) -> None:
    fuzz_random(TARGETS[name], RANDOM_EXAMPLES)
