"""The XCAP applications the phone uses (RFC 4825 §5 application usages): for
each, its auid, MIME type and the payload module that parses and builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from phone.payloads import presrules, resourcelists, rlsservices

D = TypeVar("D")


@dataclass(frozen=True)
class Application(Generic[D]):
    auid: str
    content_type: str
    parse: Callable[[bytes], D]
    build: Callable[[D], bytes]

    @classmethod
    def of(cls, module: ModuleType, auid: str | None = None) -> Application[Any]:
        """The application of a payload module (its AUID, CONTENT_TYPE, parse, build)."""
        return cls(auid or module.AUID, module.CONTENT_TYPE, module.parse, module.build)


RESOURCE_LISTS: Application[resourcelists.ResourceLists] = Application.of(resourcelists)
RLS_SERVICES: Application[rlsservices.RlsServices] = Application.of(rlsservices)
PRES_RULES: Application[presrules.PresRules] = Application.of(presrules)
OMA_PRES_RULES: Application[presrules.PresRules] = Application.of(presrules, presrules.OMA_AUID)
