"""simplephone: the core of a dialpad-less SIP SIMPLE hardphone."""

__version__ = "0.1.0"
