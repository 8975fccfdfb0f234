"""Is-composing indications (RFC 3994)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phone.payloads import PayloadError, iscomposing
from phone.payloads.iscomposing import ComposingState, IsComposing
from tests.payloads.sampledata import sample


def test_rfc3994_examples():
    assert iscomposing.parse(sample("rfc3994-active.xml")) == IsComposing(
        ComposingState.ACTIVE, content_type="text/plain", refresh=90
    )
    assert iscomposing.parse(sample("rfc3994-idle.xml")) == IsComposing(
        ComposingState.IDLE, datetime(2003, 1, 27, 10, 43, tzinfo=UTC), "audio"
    )


@pytest.mark.parametrize(
    "indication",
    [
        IsComposing(ComposingState.ACTIVE, refresh=60),
        IsComposing(
            ComposingState.IDLE, datetime(2026, 11, 24, 20, 0, 1, tzinfo=UTC), "text/plain"
        ),
        IsComposing(ComposingState.ACTIVE, None, "text/plain", 120),
    ],
)
def test_round_trip(indication):
    body = iscomposing.build(indication)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<isComposing ")
    assert iscomposing.parse(body) == indication


IC = b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (IC + b"</isComposing>", "state"),
        (IC + b"<state>typing</state></isComposing>", "typing"),
        (IC + b"<state>active</state><refresh>0</refresh></isComposing>", "positive"),
        (IC + b"<state>active</state><refresh>soon</refresh></isComposing>", "refresh"),
        (IC + b"<state>idle</state><lastactive>earlier</lastactive></isComposing>", "lastactive"),
        (
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-composing"><state>idle</state></isComposing>',
            "root",
        ),
    ],
)
def test_malformed(document, problem):
    with pytest.raises(PayloadError, match=problem):
        iscomposing.parse(document)


def test_build_refuses_a_refresh_that_cannot_be_sent():
    with pytest.raises(ValueError, match="positive"):
        iscomposing.build(IsComposing(ComposingState.ACTIVE, refresh=0))
