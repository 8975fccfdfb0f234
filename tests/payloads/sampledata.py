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
