"""Presence authorization rules (RFC 5025 over RFC 4745, and OMA's variant)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phone.payloads import PayloadError, presrules
from phone.payloads.presrules import (
    FULL_PRESENCE,
    Conditions,
    Except,
    Many,
    One,
    PresRules,
    Provide,
    Rule,
    SubHandling,
    Transformations,
    Validity,
    decide,
    decision_rule_id,
)
from tests.payloads.sampledata import sample
from tests.payloads.xsd import assert_valid

BOB, CAROL = "sip:bob@example.test", "sip:carol@example.test"


def test_rfc5025_example() -> None:
    document = presrules.parse(sample("rfc5025-pres-rules.xml"))
    (rule,) = document.rules
    assert rule.id == "a"
    assert rule.conditions == Conditions(identity=(One("sip:user@example.com"),))
    assert rule.sub_handling is SubHandling.ALLOW
    transformations = rule.transformations
    assert transformations is not None
    assert transformations.services == Provide(
        items=(("service-uri-scheme", "sip"), ("service-uri-scheme", "mailto"))
    )
    assert transformations.persons == Provide(all=True)
    assert transformations.permissions == (("provide-activities", True),)
    assert transformations.user_input == "bare"
    (unknown,) = transformations.extensions
    assert b"provide-unknown-attribute" in unknown.xml
    assert document.sub_handling("sip:user@example.com") is SubHandling.ALLOW
    assert document.sub_handling(BOB) is None
    rebuilt = presrules.build(document)
    assert_valid(rebuilt)
    assert presrules.parse(rebuilt) == document


def test_oma_defaults() -> None:
    document = presrules.parse(sample("oma-pres-rules.xml"))
    ids = [rule.id for rule in document.rules]
    assert ids[:2] == ["wp_prs_allow_own", "wp_prs_unlisted"]
    unlisted = document.rule("wp_prs_unlisted")
    assert unlisted is not None and unlisted.conditions == Conditions(other_identity=True)
    granted = document.rule("wp_prs_grantedcontacts")
    assert granted is not None and granted.conditions is not None
    assert granted.conditions.external_lists[0].endswith("%22oma_grantedcontacts%22%5D")
    anonymous = document.rule("wp_prs_block_anonymous")
    assert anonymous is not None and anonymous.conditions == Conditions(anonymous_request=True)
    # Nobody named: OMA's "other identity" rule decides (confirm: ask the user).
    assert document.sub_handling(CAROL) is SubHandling.CONFIRM
    assert document.sub_handling("sip:alice@example.test") is SubHandling.ALLOW
    rebuilt = presrules.build(document)
    assert_valid(rebuilt)
    assert presrules.parse(rebuilt) == document


def test_identities_and_combining() -> None:
    """RFC 5025 §3.2.1: matching rules combine to the most permissive action."""
    document = PresRules(
        (
            Rule(
                "domain",
                Conditions((Many("example.test", (Except(id=BOB),)),)),
                SubHandling.CONFIRM,
            ),
            Rule("everyone", Conditions((Many(),)), SubHandling.POLITE_BLOCK),
            Rule("carol", Conditions((One(CAROL),)), SubHandling.ALLOW, FULL_PRESENCE),
            Rule(
                "timed",
                Conditions(
                    (Many(excepts=(Except(domain="example.test"),)),),
                    sphere="work",
                    validity=(
                        Validity(
                            datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
                        ),
                    ),
                ),
                SubHandling.BLOCK,
            ),
        )
    )
    assert document.sub_handling(CAROL) is SubHandling.ALLOW
    assert document.sub_handling(BOB) is SubHandling.POLITE_BLOCK
    assert document.sub_handling("sip:dave@example.test") is SubHandling.POLITE_BLOCK
    assert document.sub_handling("sip:eve@elsewhere.test") is SubHandling.POLITE_BLOCK
    body = presrules.build(document)
    assert_valid(body)
    assert presrules.parse(body) == document


def test_transformations_round_trip() -> None:
    transformations = Transformations(
        services=Provide(items=(("service-uri", "sip:x@y"), ("class", "home"))),
        devices=Provide(items=(("deviceID", "urn:uuid:1"),)),
        persons=Provide(all=True),
        permissions=(("provide-note", True), ("provide-mood", False)),
        user_input="thresholds",
        all_attributes=True,
    )
    document = PresRules((Rule("r1", None, SubHandling.ALLOW, transformations),))
    body = presrules.build(document)
    assert_valid(body)
    assert presrules.parse(body) == document


def test_deciding_on_a_pending_watcher() -> None:
    """`answer` allows, `end` blocks; a later change of mind moves the watcher."""
    allowed = decide(PresRules(), CAROL, SubHandling.ALLOW)
    assert allowed.sub_handling(CAROL) is SubHandling.ALLOW
    rule = allowed.rule(decision_rule_id(SubHandling.ALLOW))
    assert rule is not None and rule.transformations == FULL_PRESENCE
    both = decide(allowed, BOB, SubHandling.ALLOW)
    assert [r.conditions.identity for r in both.rules if r.conditions] == [(One(CAROL), One(BOB))]
    blocked = decide(both, CAROL, SubHandling.BLOCK)
    assert blocked.sub_handling(CAROL) is SubHandling.BLOCK
    assert blocked.sub_handling(BOB) is SubHandling.ALLOW
    polite = decide(blocked, CAROL, SubHandling.POLITE_BLOCK)
    assert polite.sub_handling(CAROL) is SubHandling.POLITE_BLOCK
    # The emptied block rule is gone rather than left naming nobody.
    assert polite.rule(decision_rule_id(SubHandling.BLOCK)) is None
    for document in (allowed, both, blocked, polite):
        assert_valid(presrules.build(document))


def test_blocking_someone_a_wider_rule_allows() -> None:
    """A domain-wide allow would win over a block: the watcher becomes its `except`."""
    everyone = PresRules((Rule("all", Conditions((Many("example.test"),)), SubHandling.ALLOW),))
    blocked = decide(everyone, CAROL, SubHandling.BLOCK)
    assert blocked.sub_handling(CAROL) is SubHandling.BLOCK
    assert blocked.sub_handling(BOB) is SubHandling.ALLOW
    assert blocked.rules[0].conditions == Conditions((Many("example.test", (Except(id=CAROL),)),))
    assert_valid(presrules.build(blocked))


def test_decide_keeps_rules_written_by_others() -> None:
    document = presrules.parse(sample("oma-pres-rules.xml"))
    decided = decide(document, CAROL, SubHandling.ALLOW)
    assert decided.rules[: len(document.rules)] == document.rules
    assert decided.sub_handling(CAROL) is SubHandling.ALLOW


CR = (
    b'<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"'
    b' xmlns:pr="urn:ietf:params:xml:ns:pres-rules">'
)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (CR + b"<cr:rule/></cr:ruleset>", "id"),
        (CR + b'<cr:rule id="a"/><cr:rule id="a"/></cr:ruleset>', "share an id"),
        (
            CR + b'<cr:rule id="a"><cr:actions><pr:sub-handling>maybe</pr:sub-handling>'
            b"</cr:actions></cr:rule></cr:ruleset>",
            "sub-handling",
        ),
        (
            CR + b'<cr:rule id="a"><cr:conditions><cr:identity/></cr:conditions></cr:rule>'
            b"</cr:ruleset>",
            "nobody",
        ),
        (
            CR + b'<cr:rule id="a"><cr:conditions><cr:identity><cr:one id="x"/></cr:identity>'
            b'<cr:identity><cr:one id="y"/></cr:identity></cr:conditions></cr:rule></cr:ruleset>',
            "more than one",
        ),
        (
            CR + b'<cr:rule id="a"><cr:conditions><cr:validity><cr:from>2026-01-01T00:00:00Z'
            b"</cr:from></cr:validity></cr:conditions></cr:rule></cr:ruleset>",
            "pairs",
        ),
        (
            CR + b'<cr:rule id="a"><cr:transformations><pr:provide-services><pr:all-services/>'
            b"<pr:class>x</pr:class></pr:provide-services></cr:transformations></cr:rule>"
            b"</cr:ruleset>",
            "stand alone",
        ),
        (
            CR + b'<cr:rule id="a"><cr:transformations><pr:provide-note>maybe</pr:provide-note>'
            b"</cr:transformations></cr:rule></cr:ruleset>",
            "boolean",
        ),
    ],
)
def test_malformed(document: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        presrules.parse(document)


@pytest.mark.parametrize(
    "extension",
    [
        b"<foo/>",
        b'<foo xmlns="urn:ietf:params:xml:ns:common-policy"/>',
        b'<x:foo xmlns:x="urn:oma:xml:xdm:common-policy"/>',
        b'<pr:foo xmlns:pr="urn:x"><!-- c -->t<bar/>u</pr:foo>',
        b'<pr:foo xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:q="urn:q" q:x="1"/>',
    ],
)
def test_extensions_survive_a_round_trip_whatever_their_prefixes(extension: bytes) -> None:
    """lxml re-prefixes an element appended under a tree that declares its
    namespace (found by fuzzing): extensions are kept in one prefix-free form."""
    document = presrules.parse(
        b'<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"'
        b' xmlns:cr="urn:ietf:params:xml:ns:common-policy"><cr:rule id="a">'
        b"<cr:transformations>" + extension + b"</cr:transformations></cr:rule></cr:ruleset>"
    )
    assert presrules.parse(presrules.build(document)) == document
