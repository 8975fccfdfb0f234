"""Access to the sample documents under tests/payloads/samples/."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"

RFC4662_NOTIFY_CONTENT_TYPE = (
    'multipart/related;type="application/rlmi+xml";'
    'start="<nXYxAE@pres.example.com>";boundary="50UBfW7LSCVLtggUPe5z"'
)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def kamailio_notify(number: int) -> tuple[str, bytes]:
    """Content-Type and body of RLS NOTIFY `number` (1-3) as Kamailio 5.6.3 sent it.

    Captured on loopback with tests/peers/kamailio.py: alice subscribed to
    sip:alice-buddies@example.test (bob, carol); bob and carol had PUBLISHed
    `pidf.build_user_presence` documents, and bob published again after NOTIFY 2.
    """
    content_type = (SAMPLES / f"kamailio-rls-notify-{number}.content-type").read_text().strip()
    return content_type, sample(f"kamailio-rls-notify-{number}.mime")
