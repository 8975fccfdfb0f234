"""What MSRP needs from an m=message section beyond `phone.sip.sdp`: file
transfer attributes (RFC 5547), `a=max-size` (RFC 4975 section 8.6) and
`a=fingerprint` (RFC 4572).

`phone.sip.sdp` parses SDP and offers or answers the message line (path,
accept types, setup); these pure functions read and write the rest on its
`MediaSection`. A Blink file push offers `a=file-selector:name:"a.jpg"
type:image/jpeg size:32349 hash:sha-1:72:24:...`, `a=file-transfer-id`,
`a=file-disposition` and `a=sendonly`; the answer repeats the selector and
the transfer id with `a=recvonly`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from phone.msrp.error import MsrpError
from phone.msrp.tls import Fingerprint
from phone.sip.sdp import MediaSection, SessionDescription

_SELECTOR_PART = re.compile(r'(name):"([^"]*)"|(type|size|hash):(\S+)')
_HASH = re.compile(r"([A-Za-z0-9-]+):((?:[0-9A-Fa-f]{2}:)*[0-9A-Fa-f]{2})")
_RANGE = re.compile(r"(\d+)-(\d+|\*)")


@dataclass(frozen=True)
class FileSelector:
    """`a=file-selector` (RFC 5547 section 5): which file, as far as it is said."""

    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    hash_algorithm: str | None = None  # "sha-1", the only one RFC 5547 registers
    digest: bytes | None = None

    @classmethod
    def parse(cls, text: str) -> FileSelector:
        fields: dict[str, str] = {}
        position = 0
        text = text.strip()
        while position < len(text):
            match = _SELECTOR_PART.match(text, position)
            if match is None:
                raise MsrpError(400, f"bad file-selector {text[:80]!r}")
            key = match[1] or match[3]
            fields[key] = match[2] if match[1] else match[4]
            position = match.end()
            while position < len(text) and text[position] == " ":
                position += 1
        size = fields.get("size")
        if size is not None and (not size.isdigit() or len(size) > 15):
            raise MsrpError(400, f"bad file size {size[:20]!r}")
        algorithm = digest = None
        if "hash" in fields:
            hash_match = _HASH.fullmatch(fields["hash"])
            if hash_match is None:
                raise MsrpError(400, f"bad file hash {fields['hash'][:80]!r}")
            algorithm = hash_match[1].lower()
            digest = bytes.fromhex(hash_match[2].replace(":", ""))
        name = fields.get("name")
        return cls(
            name=unquote(name) if name is not None else None,
            content_type=fields.get("type"),
            size=int(size) if size is not None else None,
            hash_algorithm=algorithm,
            digest=digest,
        )

    def __str__(self) -> str:
        parts = []
        if self.name is not None:
            parts.append(f'name:"{quote(self.name, safe=" !#$&()+,;=@[]^`{{}}~")}"')
        if self.content_type is not None:
            parts.append(f"type:{self.content_type}")
        if self.size is not None:
            parts.append(f"size:{self.size}")
        if self.hash_algorithm is not None and self.digest is not None:
            parts.append(f"hash:{self.hash_algorithm}:{self.digest.hex(':').upper()}")
        return " ".join(parts)


@dataclass(frozen=True)
class FileTransfer:
    """The file attributes of one m=message line (RFC 5547 section 6)."""

    selector: FileSelector
    transfer_id: str | None = None
    disposition: str | None = None  # "render" or "attachment" (the default)
    byte_range: tuple[int, int | None] | None = None  # a=file-range: start, stop (None: *)
    description: str | None = None  # the i= line


def file_transfer(section: MediaSection) -> FileTransfer | None:
    """The file offered or accepted in `section`, or None for a chat line."""
    selector = section.attribute("file-selector")
    if selector is None:
        return None
    byte_range = None
    range_text = section.attribute("file-range")
    if range_text is not None:
        match = _RANGE.fullmatch(range_text)
        if match is None or int(match[1]) < 1:
            raise MsrpError(400, f"bad file-range {range_text[:40]!r}")
        byte_range = (int(match[1]), None if match[2] == "*" else int(match[2]))
    description = next((line[2:] for line in section.lines if line.startswith("i=")), None)
    return FileTransfer(
        selector=FileSelector.parse(selector),
        transfer_id=section.attribute("file-transfer-id"),
        disposition=section.attribute("file-disposition"),
        byte_range=byte_range,
        description=description,
    )


def file_lines(transfer: FileTransfer) -> tuple[str, ...]:
    """The lines that describe `transfer` in our offer or answer."""
    lines = [f"i={transfer.description}"] if transfer.description else []
    lines.append(f"a=file-selector:{transfer.selector}")
    if transfer.transfer_id is not None:
        lines.append(f"a=file-transfer-id:{transfer.transfer_id}")
    if transfer.disposition is not None:
        lines.append(f"a=file-disposition:{transfer.disposition}")
    if transfer.byte_range is not None:
        start, stop = transfer.byte_range
        lines.append(f"a=file-range:{start}-{'*' if stop is None else stop}")
    return tuple(lines)


def max_size(section: MediaSection) -> int | None:
    """`a=max-size`: the largest message the peer takes (RFC 4975 section 8.6)."""
    value = section.attribute("max-size")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 15:
        raise MsrpError(400, f"bad max-size {value[:20]!r}")
    return int(value)


def fingerprint(sdp: SessionDescription, section: MediaSection) -> Fingerprint | None:
    """The peer's certificate fingerprint: the media line's, else the session's (RFC 4572)."""
    value = section.attribute("fingerprint")
    if value is None:
        prefix = "a=fingerprint:"
        value = next((line[len(prefix) :] for line in sdp.session if line.startswith(prefix)), None)
    return None if value is None else Fingerprint.parse(value)


def fingerprint_line(ours: Fingerprint) -> str:
    return f"a=fingerprint:{ours}"
