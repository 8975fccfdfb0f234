"""What the screen shows of a conversation: who wrote, their text wrapped to
the display's 21 columns, a window of it that `volume_up`/`volume_down`
scroll, whether they are typing, and the canned reply `page` picked.

The body has three rows: the sender's name (and "typing…"), then two rows
of text, the newest at the bottom, older lines scrolled off the top. Once
`page` picked a reply, the last row shows it instead ("> On my way").
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

COLUMNS = 21
TEXT_ROWS = 2
TYPING = "typing…"
KEPT_TEXTS = 20  # messages of one sender the view holds
SHOWN_CHARACTERS = 2000
"""The tail of a text that is wrapped and can be scrolled: a megabyte of text
is no reading on 21 columns, and wrapping it whole would stall the loop."""


def wrap(texts: list[str]) -> list[str]:
    """Every text wrapped to the display's width, one after another (long texts: their tail)."""
    lines: list[str] = []
    for text in texts:
        if len(text) > SHOWN_CHARACTERS:
            text = "…" + text[-SHOWN_CHARACTERS:]
        for paragraph in text.splitlines() or [""]:
            lines += textwrap.wrap(paragraph, COLUMNS, break_long_words=True) or [""]
    return lines


@dataclass
class ChatView:
    peer_uri: str
    name: str
    texts: list[str]
    replies: tuple[str, ...]
    typing: bool = False
    reply: int | None = None  # index into replies, once `page` was pressed
    _scroll: int = field(default=0)  # rows up from the newest

    def add(self, text: str) -> None:
        self.texts.append(text)
        del self.texts[:-KEPT_TEXTS]
        self._scroll = 0

    def scroll(self, rows: int) -> None:
        """Positive: towards older lines."""
        top = max(0, len(wrap(self.texts)) - self._text_rows())
        self._scroll = min(top, max(0, self._scroll + rows))

    def next_reply(self) -> str | None:
        if not self.replies:
            return None
        self.reply = 0 if self.reply is None else (self.reply + 1) % len(self.replies)
        return self.replies[self.reply]

    @property
    def chosen(self) -> str | None:
        return None if self.reply is None else self.replies[self.reply]

    def _text_rows(self) -> int:
        return TEXT_ROWS - (1 if self.reply is not None else 0)

    def lines(self) -> list[str]:
        head = f"{self.name}:"
        if self.typing:
            head = f"{self.name[: COLUMNS - len(TYPING) - 2]}: {TYPING}"
        text = wrap(self.texts)
        rows = self._text_rows()
        end = len(text) - self._scroll
        body = text[max(0, end - rows) : end]
        if self.chosen is not None:
            body.append(f"> {self.chosen}"[:COLUMNS])
        return [head[:COLUMNS], *body]
