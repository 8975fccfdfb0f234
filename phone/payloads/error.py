"""The one error every payload parser raises.

A NOTIFY body comes from the network, so a malformed one must never crash the
phone nor yield half an object: every parser turns any defect into a
`PayloadError` naming the document and the problem.
"""

from __future__ import annotations


class PayloadError(ValueError):
    """A payload is malformed, hostile or not the document we expected."""

    def __init__(self, document: str, problem: str) -> None:
        super().__init__(f"{document}: {problem}")
        self.document = document
        self.problem = problem
