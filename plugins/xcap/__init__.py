"""XCAP: the contact buttons from the user's server documents, and presence
authorization answered on the phone (RFC 4825, 4826, 5025, 5875).

Settings (`[plugins.xcap]`):

* `root`: the XCAP root, e.g. "https://xcap.example.com/xcap-root"; without
  it the root is looked up from the account's domain as Blink does
  (`phone.xcap.discovery`).
* `username`, `password`: for the XCAP server; default: the SIP account's.
* `document` (default "index"): the resource-lists document.
* `list`: the top-level list whose entries become contacts; default: every
  entry of the document, in document order.
* `refresh_s` (default 300): how often the list is read again (conditional
  GET) when the server keeps no xcap-diff subscription.
* `deny` ("block" or "polite-block"): what `end` on a watcher prompt writes.
* `allow_contacts` (default true): with no pres-rules document at the first
  start, write one that lets the contacts watch our presence.

See plugins/xcap/README.md for the set-up and the config-vs-XCAP rule.
"""

from __future__ import annotations

from phone.payloads.presrules import SubHandling
from phone.settings import ConfigError, Table
from plugins.xcap.plugin import XcapPlugin, XcapSettings

__all__ = ["XcapPlugin", "XcapSettings", "create_plugin"]


def create_plugin(settings: Table) -> XcapPlugin:
    """Read `[plugins.xcap]` (see phone.hookspecs)."""
    root = settings.text("root")
    if root is not None and not root.startswith(("http://", "https://")):
        raise ConfigError(settings.key("root"), f"must be an http(s) URL, got {root!r}")
    deny = settings.choice("deny", ("block", "polite-block"), "block")
    return XcapPlugin(
        XcapSettings(
            root=root,
            username=settings.text("username"),
            password=settings.text("password"),
            document=settings.text("document", "index"),
            list_name=settings.text("list"),
            refresh_s=settings.integer("refresh_s", 1, 86_400, 300),
            deny=SubHandling(deny),
            allow_contacts=settings.boolean("allow_contacts", True),
        )
    )
