"""Presence authorization rules (RFC 5025 over common policy, RFC 4745; OMA's variant).

A `<ruleset>` holds rules; a rule applies to a watcher when all its conditions
match (an `<identity>` lists who: `<one id>` a URI, `<many domain>` a domain or
everyone, minus its `<except>`s). Its `<sub-handling>` action says what the
presence server does with the subscription: block, confirm (leave it pending
and ask the user), polite-block (pretend) or allow. Several matching rules
combine to the most permissive action (RFC 5025 §3.2.1); transformations say
what the watcher gets to see (`<provide-services>`, `<provide-persons>`, ...).

OMA's presence rules (auid `org.openmobilealliance.pres-rules`) are the same
document with three more conditions from `urn:oma:xml:xdm:common-policy`:
`<other-identity>` (nobody else matched), `<external-list>` (the members of
resource lists) and `<anonymous-request>`.

Elements we do not model are kept as `Extension`s, so a rule written by Blink
or the web portal survives our edits. `decide` is the edit the phone makes
when its user answers a watcher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from lxml import etree

from phone.payloads import xml
from phone.payloads.error import PayloadError
from phone.payloads.resourcelists import Extension, canonical

COMMON_POLICY_NS = "urn:ietf:params:xml:ns:common-policy"
PRES_RULES_NS = "urn:ietf:params:xml:ns:pres-rules"
OMA_COMMON_POLICY_NS = "urn:oma:xml:xdm:common-policy"
CONTENT_TYPE = "application/auth-policy+xml"
AUID = "pres-rules"
OMA_AUID = "org.openmobilealliance.pres-rules"
DOCUMENT = "pres-rules"

NAMESPACES = {"cr": COMMON_POLICY_NS, "pr": PRES_RULES_NS, "ocp": OMA_COMMON_POLICY_NS}


class SubHandling(StrEnum):
    """RFC 5025 §3.2.1, from least to most permissive."""

    BLOCK = "block"
    CONFIRM = "confirm"
    POLITE_BLOCK = "polite-block"
    ALLOW = "allow"

    @property
    def permission(self) -> int:
        """The value RFC 5025 gives each action; matching rules combine by maximum."""
        return {"block": 0, "confirm": 10, "polite-block": 20, "allow": 30}[self.value]


@dataclass(frozen=True)
class One:
    """`<one id>`: exactly this identity (a SIP URI for presence)."""

    id: str


@dataclass(frozen=True)
class Except:
    """`<except>` inside `<many>`: an identity (`id`) or a domain left out."""

    id: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class Many:
    """`<many>`: every identity in `domain` (every identity at all without one)."""

    domain: str | None = None
    excepts: tuple[Except, ...] = ()


@dataclass(frozen=True)
class Validity:
    """`<validity>`: the rule applies only between `start` and `end`."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Conditions:
    """What must all hold for a rule to apply; an empty `<conditions>` always holds."""

    identity: tuple[One | Many, ...] | None = None
    sphere: str | None = None
    validity: tuple[Validity, ...] = ()
    other_identity: bool = False
    anonymous_request: bool = False
    external_lists: tuple[str, ...] = ()
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class Provide:
    """`<provide-services>`, `-persons` or `-devices`: all, or the listed ones as
    (element name, value) pairs such as ("class", "home")."""

    all: bool = False
    items: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Transformations:
    """RFC 5025 §3.3: what a matching watcher gets to see. `permissions` are the
    boolean `provide-*` elements by name ("provide-note": True, ...)."""

    services: Provide | None = None
    persons: Provide | None = None
    devices: Provide | None = None
    permissions: tuple[tuple[str, bool], ...] = ()
    user_input: str | None = None
    all_attributes: bool = False
    extensions: tuple[Extension, ...] = ()


FULL_PRESENCE = Transformations(
    services=Provide(all=True),
    persons=Provide(all=True),
    devices=Provide(all=True),
    all_attributes=True,
)
"""Everything: what a watcher the user allows gets."""


@dataclass(frozen=True)
class Rule:
    """A `<rule id>`: conditions, the sub-handling action and transformations."""

    id: str
    conditions: Conditions | None = None
    sub_handling: SubHandling | None = None
    transformations: Transformations | None = None
    action_extensions: tuple[Extension, ...] = ()

    def applies_to(self, uri: str) -> bool:
        """Whether this rule's conditions match watcher `uri` as far as the phone can
        tell: identity yes; OMA's external lists, anonymity and "other identity"
        are left to the server (False here; see `PresRules.sub_handling`)."""
        conditions = self.conditions
        if conditions is None:
            return True
        if conditions.other_identity or conditions.anonymous_request or conditions.external_lists:
            return False
        if conditions.identity is None:
            return True
        domain = uri.rpartition("@")[2].lower()
        for item in conditions.identity:
            if isinstance(item, One) and item.id == uri:
                return True
            if isinstance(item, Many) and (item.domain is None or item.domain.lower() == domain):
                left_out = any(
                    e.id == uri or (e.domain is not None and e.domain.lower() == domain)
                    for e in item.excepts
                )
                if not left_out:
                    return True
        return False


@dataclass(frozen=True)
class PresRules:
    """A whole pres-rules document (a common-policy `<ruleset>`)."""

    rules: tuple[Rule, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def sub_handling(self, uri: str) -> SubHandling | None:
        """The combined action for a watcher `uri`: the most permissive of the rules
        that match (RFC 4745 §10, RFC 5025 §3.2.1); when none does, OMA's
        `<other-identity>` rules; None when nothing applies."""
        matching = [r for r in self.rules if r.applies_to(uri)]
        if not matching:
            matching = [r for r in self.rules if r.conditions and r.conditions.other_identity]
        actions = [r.sub_handling for r in matching if r.sub_handling is not None]
        return max(actions, key=lambda a: a.permission) if actions else None


# -- parsing ----------------------------------------------------------------


def _extensions(element: xml.Element, known: frozenset[str]) -> tuple[Extension, ...]:
    return tuple(Extension(canonical(c)) for c in xml.children(element) if c.tag not in known)


def _read_identity(element: xml.Element) -> tuple[One | Many, ...]:
    items: list[One | Many] = []
    for child in xml.children(element):
        if child.tag == xml.qname(COMMON_POLICY_NS, "one"):
            items.append(One(xml.required_attr(child, "id", DOCUMENT)))
        elif child.tag == xml.qname(COMMON_POLICY_NS, "many"):
            excepts = tuple(
                Except(id=e.get("id"), domain=e.get("domain"))
                for e in xml.children(child, COMMON_POLICY_NS, "except")
            )
            items.append(Many(domain=child.get("domain"), excepts=excepts))
        else:
            raise PayloadError(DOCUMENT, f"unsupported identity {child.tag}")
    if not items:
        raise PayloadError(DOCUMENT, "<identity> names nobody")
    return tuple(items)


def _read_validity(element: xml.Element) -> tuple[Validity, ...]:
    starts = xml.children(element, COMMON_POLICY_NS, "from")
    ends = xml.children(element, COMMON_POLICY_NS, "until")
    if len(starts) != len(ends) or not starts:
        raise PayloadError(DOCUMENT, "<validity> needs <from>/<until> pairs")
    pairs = []
    for start, end in zip(starts, ends, strict=True):
        begin = xml.datetime_value(xml.text(start), DOCUMENT, "<from>")
        until = xml.datetime_value(xml.text(end), DOCUMENT, "<until>")
        assert begin is not None and until is not None
        pairs.append(Validity(begin, until))
    return tuple(pairs)


_CONDITIONS = frozenset(
    xml.qname(ns, name)
    for ns, name in (
        (COMMON_POLICY_NS, "identity"),
        (COMMON_POLICY_NS, "sphere"),
        (COMMON_POLICY_NS, "validity"),
        (OMA_COMMON_POLICY_NS, "other-identity"),
        (OMA_COMMON_POLICY_NS, "anonymous-request"),
        (OMA_COMMON_POLICY_NS, "external-list"),
    )
)


def _read_conditions(element: xml.Element) -> Conditions:
    identities = xml.children(element, COMMON_POLICY_NS, "identity")
    if len(identities) > 1:
        raise PayloadError(DOCUMENT, "a rule with more than one <identity> is not supported")
    sphere = xml.child(element, COMMON_POLICY_NS, "sphere")
    external = xml.children(element, OMA_COMMON_POLICY_NS, "external-list")
    return Conditions(
        identity=_read_identity(identities[0]) if identities else None,
        sphere=None if sphere is None else xml.required_attr(sphere, "value", DOCUMENT),
        validity=tuple(
            v
            for element in xml.children(element, COMMON_POLICY_NS, "validity")
            for v in _read_validity(element)
        ),
        other_identity=xml.child(element, OMA_COMMON_POLICY_NS, "other-identity") is not None,
        anonymous_request=xml.child(element, OMA_COMMON_POLICY_NS, "anonymous-request") is not None,
        external_lists=tuple(
            xml.required_attr(entry, "anc", DOCUMENT)
            for lists in external
            for entry in xml.children(lists, OMA_COMMON_POLICY_NS, "entry")
        ),
        extensions=_extensions(element, _CONDITIONS),
    )


_PROVIDE = {
    "provide-services": "services",
    "provide-persons": "persons",
    "provide-devices": "devices",
}
_ALL = {"services": "all-services", "persons": "all-persons", "devices": "all-devices"}
BOOLEAN_PERMISSIONS = (
    "provide-activities",
    "provide-class",
    "provide-deviceID",
    "provide-mood",
    "provide-place-is",
    "provide-place-type",
    "provide-privacy",
    "provide-relationship",
    "provide-status-icon",
    "provide-sphere",
    "provide-time-offset",
    "provide-note",
)
_USER_INPUT = ("false", "bare", "thresholds", "full")


def _read_provide(element: xml.Element, kind: str) -> Provide:
    children = xml.children(element)
    if any(c.tag == xml.qname(PRES_RULES_NS, _ALL[kind]) for c in children):
        if len(children) != 1:
            raise PayloadError(DOCUMENT, f"<{_ALL[kind]}> must stand alone")
        return Provide(all=True)
    items = []
    for child in children:
        if xml.namespace_of(child) != PRES_RULES_NS:
            raise PayloadError(DOCUMENT, f"unsupported {child.tag} in <provide-{kind}>")
        items.append((xml.local_name(child), xml.text(child) or ""))
    return Provide(items=tuple(items))


def _read_transformations(element: xml.Element) -> Transformations:
    provided: dict[str, Provide] = {}
    permissions: list[tuple[str, bool]] = []
    user_input: str | None = None
    all_attributes = False
    extensions: list[Extension] = []
    for child in xml.children(element):
        name = xml.local_name(child)
        if xml.namespace_of(child) != PRES_RULES_NS:
            extensions.append(Extension(canonical(child)))
        elif name in _PROVIDE and _PROVIDE[name] not in provided:
            provided[_PROVIDE[name]] = _read_provide(child, _PROVIDE[name])
        elif name in BOOLEAN_PERMISSIONS and name not in dict(permissions):
            permissions.append((name, xml.bool_value(child.text, DOCUMENT, f"<{name}>")))
        elif name == "provide-user-input" and user_input is None:
            user_input = xml.text(child)
            if user_input not in _USER_INPUT:
                raise PayloadError(DOCUMENT, f"<provide-user-input> is {user_input!r}")
        elif name == "provide-all-attributes":
            all_attributes = True
        else:
            extensions.append(Extension(canonical(child)))
    return Transformations(
        services=provided.get("services"),
        persons=provided.get("persons"),
        devices=provided.get("devices"),
        permissions=tuple(permissions),
        user_input=user_input,
        all_attributes=all_attributes,
        extensions=tuple(extensions),
    )


def _read_rule(element: xml.Element) -> Rule:
    conditions = xml.child(element, COMMON_POLICY_NS, "conditions")
    actions = xml.child(element, COMMON_POLICY_NS, "actions")
    transformations = xml.child(element, COMMON_POLICY_NS, "transformations")
    sub_handling = None if actions is None else xml.child(actions, PRES_RULES_NS, "sub-handling")
    handling = xml.qname(PRES_RULES_NS, "sub-handling")
    return Rule(
        id=xml.required_attr(element, "id", DOCUMENT),
        conditions=None if conditions is None else _read_conditions(conditions),
        sub_handling=None
        if sub_handling is None
        else xml.enum_value(SubHandling, sub_handling.text, DOCUMENT, "<sub-handling>"),
        transformations=None if transformations is None else _read_transformations(transformations),
        action_extensions=()
        if actions is None
        else tuple(
            Extension(canonical(c))
            for c in xml.children(actions)
            if c is not sub_handling and c.tag != handling
        ),
    )


def parse(data: bytes, *, limit: int = xml.MULTIPART_LIMIT) -> PresRules:
    """Parse an application/auth-policy+xml pres-rules body (RFC 5025 or OMA)."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=COMMON_POLICY_NS, root="ruleset", limit=limit
    )
    rules = tuple(_read_rule(e) for e in xml.children(root, COMMON_POLICY_NS, "rule"))
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise PayloadError(DOCUMENT, "two rules share an id")
    return PresRules(rules=rules)


# -- building ---------------------------------------------------------------


def _append(parent: xml.Element, extensions: tuple[Extension, ...]) -> None:
    for extension in extensions:
        parent.append(xml.parse_any(extension.xml, document=DOCUMENT))


def _write_conditions(parent: xml.Element, conditions: Conditions) -> None:
    element = xml.sub(parent, COMMON_POLICY_NS, "conditions")
    if conditions.identity is not None:
        identity = xml.sub(element, COMMON_POLICY_NS, "identity")
        for item in conditions.identity:
            if isinstance(item, One):
                xml.sub(identity, COMMON_POLICY_NS, "one").set("id", item.id)
                continue
            many = xml.sub(identity, COMMON_POLICY_NS, "many")
            if item.domain is not None:
                many.set("domain", item.domain)
            for left_out in item.excepts:
                excluded = xml.sub(many, COMMON_POLICY_NS, "except")
                for name, value in (("domain", left_out.domain), ("id", left_out.id)):
                    if value is not None:
                        excluded.set(name, value)
    if conditions.sphere is not None:
        xml.sub(element, COMMON_POLICY_NS, "sphere").set("value", conditions.sphere)
    if conditions.validity:
        validity = xml.sub(element, COMMON_POLICY_NS, "validity")
        for pair in conditions.validity:
            xml.sub(validity, COMMON_POLICY_NS, "from", xml.format_datetime(pair.start))
            xml.sub(validity, COMMON_POLICY_NS, "until", xml.format_datetime(pair.end))
    if conditions.other_identity:
        xml.sub(element, OMA_COMMON_POLICY_NS, "other-identity")
    if conditions.anonymous_request:
        xml.sub(element, OMA_COMMON_POLICY_NS, "anonymous-request")
    if conditions.external_lists:
        lists = xml.sub(element, OMA_COMMON_POLICY_NS, "external-list")
        for anchor in conditions.external_lists:
            xml.sub(lists, OMA_COMMON_POLICY_NS, "entry").set("anc", anchor)
    _append(element, conditions.extensions)


def _write_transformations(parent: xml.Element, transformations: Transformations) -> None:
    element = xml.sub(parent, COMMON_POLICY_NS, "transformations")
    for kind in ("services", "devices", "persons"):
        provide: Provide | None = getattr(transformations, kind)
        if provide is None:
            continue
        provided = xml.sub(element, PRES_RULES_NS, f"provide-{kind}")
        if provide.all:
            xml.sub(provided, PRES_RULES_NS, _ALL[kind])
        for name, value in provide.items:
            xml.sub(provided, PRES_RULES_NS, name, value)
    for name, allowed in transformations.permissions:
        xml.sub(element, PRES_RULES_NS, name, "true" if allowed else "false")
    if transformations.user_input is not None:
        xml.sub(element, PRES_RULES_NS, "provide-user-input", transformations.user_input)
    if transformations.all_attributes:
        xml.sub(element, PRES_RULES_NS, "provide-all-attributes")
    _append(element, transformations.extensions)


def build(document: PresRules) -> bytes:
    """The application/auth-policy+xml body for `document`."""
    root = etree.Element(xml.qname(COMMON_POLICY_NS, "ruleset"), nsmap=NAMESPACES)
    for rule in document.rules:
        element = xml.sub(root, COMMON_POLICY_NS, "rule")
        element.set("id", rule.id)
        if rule.conditions is not None:
            _write_conditions(element, rule.conditions)
        if rule.sub_handling is not None or rule.action_extensions:
            actions = xml.sub(element, COMMON_POLICY_NS, "actions")
            if rule.sub_handling is not None:
                xml.sub(actions, PRES_RULES_NS, "sub-handling", rule.sub_handling.value)
            _append(actions, rule.action_extensions)
        if rule.transformations is not None:
            _write_transformations(element, rule.transformations)
    return xml.serialise(root)


# -- the phone's edit ---------------------------------------------------------


def decision_rule_id(handling: SubHandling) -> str:
    """The id of the rule holding the watchers the user answered with `handling`."""
    return f"simplephone_{handling.value.replace('-', '_')}"


def decide(document: PresRules, uri: str, handling: SubHandling) -> PresRules:
    """`document` changed so that watcher `uri` gets `handling`, whatever it had.

    Rules combine by the most permissive action, so adding a rule is not enough
    to lower a watcher's permission: `uri` is taken out of every other rule's
    `<one>` list (a rule left naming nobody goes), and added as an `<except>`
    to every more permissive `<many>` that covers it. Then it is added to the
    rule `decision_rule_id(handling)`, created if missing (with full presence
    for `allow`).
    """
    rules: list[Rule] = []
    for rule in document.rules:
        conditions = rule.conditions
        if conditions is None or conditions.identity is None:
            rules.append(rule)
            continue
        more_permissive = (
            rule.sub_handling is not None and rule.sub_handling.permission > handling.permission
        )
        identity: list[One | Many] = []
        for item in conditions.identity:
            if isinstance(item, One):
                if item.id != uri:
                    identity.append(item)
            elif more_permissive and replace(rule, conditions=Conditions((item,))).applies_to(uri):
                identity.append(replace(item, excepts=(*item.excepts, Except(id=uri))))
            else:
                identity.append(item)
        if identity:
            rules.append(replace(rule, conditions=replace(conditions, identity=tuple(identity))))
    rule_id = decision_rule_id(handling)
    existing = next((r for r in rules if r.id == rule_id), None)
    if existing is None:
        rules.append(
            Rule(
                id=rule_id,
                conditions=Conditions(identity=(One(uri),)),
                sub_handling=handling,
                transformations=FULL_PRESENCE if handling is SubHandling.ALLOW else None,
            )
        )
    elif existing.conditions is not None and existing.conditions.identity is not None:
        grown = replace(existing.conditions, identity=(*existing.conditions.identity, One(uri)))
        rules[rules.index(existing)] = replace(existing, conditions=grown)
    return PresRules(rules=tuple(rules))
