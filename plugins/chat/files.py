"""Files pushed to the phone (RFC 5547, receive side), as Blink sends them:
an m=message offer with `a=file-selector` (name, type, size, `hash:sha-1`)
and `a=sendonly`.

An offer up to `max_file_bytes` is answered with the selector and transfer
id repeated, `a=recvonly`, and the file's type in `a=accept-types`; a
larger one (or one without a size) gets 488. The file is written to the
plugin's data directory as it arrives (`FileSink`, never whole in memory),
and its SHA-1 compared with the offer's hash when there was one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from phone.api import MediaSection, SdpError, SessionDescription
from phone.msrp.chunks import FileSink
from phone.msrp.error import MsrpError
from phone.msrp.sdp import FileTransfer, file_lines, file_transfer
from plugins.chat.transport import message_section

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


class FileTooLarge(SdpError):
    """An offer over `max_file_bytes` (answered 488)."""

    def __init__(self, transfer: FileTransfer, limit: int) -> None:
        super().__init__(f"file of {transfer.selector.size} bytes is over the {limit}-byte limit")
        self.transfer = transfer


def offered_file(offer: SessionDescription | None) -> FileTransfer | None:
    """The file a chat offer pushes, or None for a chat."""
    section = message_section(offer)
    if section is None:
        return None
    try:
        return file_transfer(section)
    except MsrpError as exc:
        raise SdpError(exc.reason) from None


def answer_lines(section: MediaSection, limit: int) -> tuple[str, ...]:
    """Our answer's file lines (RFC 5547 section 8.2), or `SdpError` for 488."""
    try:
        transfer = file_transfer(section)
    except MsrpError as exc:
        raise SdpError(exc.reason) from None
    if transfer is None:
        return ()
    if "a=sendonly" not in section.lines:
        raise SdpError("only file pushes (a=sendonly) are taken, not pulls")
    size = transfer.selector.size
    if size is None or size > limit:
        raise FileTooLarge(transfer, limit)
    accept = section.attribute("accept-types") or "*"
    return (f"a=accept-types:{accept}", "a=recvonly", *file_lines(transfer))


def file_path(directory: Path, transfer: FileTransfer) -> Path:
    """Where a received file goes: its own name, made safe, after the time."""
    name = Path(transfer.selector.name or "file").name
    safe = _UNSAFE.sub("_", name).strip(" .") or "file"
    return directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"


def sha1_ok(transfer: FileTransfer, sink: FileSink) -> bool | None:
    """Whether the file has the offered SHA-1; None when none was offered."""
    selector = transfer.selector
    if selector.hash_algorithm != "sha-1" or selector.digest is None:
        return None
    return sink.sha1() == selector.digest.hex()


def is_image(transfer: FileTransfer) -> bool:
    content_type = (transfer.selector.content_type or "").lower()
    return content_type.startswith("image/")


def size_text(size: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
