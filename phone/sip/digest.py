"""HTTP Digest for SIP requests we send ourselves (RFC 3261 section 22, RFC 7616).

Requests built by `phone.sip.rawsip` bypass pjsua's account, so pjsip's own
client authenticator (`pjsip_auth_clt_*`) would need a `pjsip_cred_info`, whose
layout changed in 2.15 (`algorithm_type` inserted mid-struct). Computing the
response here keeps us free of that layout. MD5 and SHA-256 (RFC 8760), with
qop "auth" when offered.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from phone.sip.message import MessageError, SipMessage

log = logging.getLogger(__name__)

_ALGORITHMS = {"md5": hashlib.md5, "sha-256": hashlib.sha256}


@dataclass(frozen=True)
class Credentials:
    """Digest credentials of one account; realm "*" answers any realm."""

    username: str
    password: str
    realm: str = "*"

    def __repr__(self) -> str:  # never log the password
        return f"Credentials(username={self.username!r}, realm={self.realm!r})"


@dataclass(frozen=True)
class DigestChallenge:
    """A WWW-Authenticate or Proxy-Authenticate challenge."""

    realm: str
    nonce: str
    algorithm: str
    qop: tuple[str, ...]
    opaque: str | None
    stale: bool

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            raise MessageError(f"unsupported auth scheme {scheme!r}")
        params = _auth_params(rest)
        if "nonce" not in params or "realm" not in params:
            raise MessageError("digest challenge without realm or nonce")
        algorithm = params.get("algorithm", "MD5").lower()
        if algorithm not in _ALGORITHMS:
            raise MessageError(f"unsupported digest algorithm {algorithm!r}")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=algorithm,
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )

    def authorization(self, credentials: Credentials, method: str, uri: str, nc: int = 1) -> str:
        """The Authorization header value answering this challenge."""
        if credentials.realm not in ("*", self.realm):
            raise MessageError(f"no credentials for realm {self.realm!r}")
        hash_ = _ALGORITHMS[self.algorithm]

        def h(text: str) -> str:
            return hash_(text.encode()).hexdigest()

        ha1 = h(f"{credentials.username}:{self.realm}:{credentials.password}")
        ha2 = h(f"{method}:{uri}")
        fields = [
            f'username="{credentials.username}"',
            f'realm="{self.realm}"',
            f'nonce="{self.nonce}"',
            f'uri="{uri}"',
        ]
        if "auth" in self.qop:
            cnonce = secrets.token_hex(8)
            nc_text = f"{nc:08x}"
            response = h(f"{ha1}:{self.nonce}:{nc_text}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc_text}", f'cnonce="{cnonce}"']
        else:
            response = h(f"{ha1}:{self.nonce}:{ha2}")
        fields.append(f'response="{response}"')
        fields.append(f"algorithm={'MD5' if self.algorithm == 'md5' else 'SHA-256'}")
        if self.opaque is not None:
            fields.append(f'opaque="{self.opaque}"')
        return "Digest " + ", ".join(fields)


class DigestAuth:
    """The digest state of one requester across its requests: the challenge to
    answer, its nonce count, and how many challenges in a row went unanswered
    (a second 401/407 after an answer means the credentials are wrong)."""

    MAX_TRIES = 2

    def __init__(self, credentials: Credentials | None, what: str) -> None:
        self.credentials = credentials
        self.what = what  # for log lines, e.g. "SUBSCRIBE presence"
        self._challenge: tuple[str, DigestChallenge] | None = None
        self._nc = 0
        self._tries = 0

    def reset(self) -> None:
        """A new dialog: the old challenge no longer applies."""
        self._challenge = None
        self._nc = 0

    def accepted(self) -> None:
        """A 2xx: the credentials worked."""
        self._tries = 0

    def challenged(self, response: SipMessage) -> bool:
        """Take the challenge of a 401/407; False when it cannot or should not be answered."""
        status = response.status
        header = "www-authenticate" if status == 401 else "proxy-authenticate"
        value = response.header(header)
        if self.credentials is None or value is None or self._tries >= self.MAX_TRIES:
            return False
        try:
            challenge = DigestChallenge.parse(value)
        except MessageError as exc:
            log.warning("%s: unusable challenge: %s", self.what, exc)
            return False
        self._tries += 1
        self._challenge = ("Authorization" if status == 401 else "Proxy-Authorization", challenge)
        self._nc = 0
        return True

    def header(self, method: str, uri: str) -> tuple[str, str] | None:
        """The Authorization or Proxy-Authorization header for the next request, if challenged."""
        if self._challenge is None or self.credentials is None:
            return None
        name, challenge = self._challenge
        self._nc += 1
        return name, challenge.authorization(self.credentials, method, uri, self._nc)


def _auth_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    i = 0
    while i < len(text):
        while i < len(text) and text[i] in " ,\t":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq].strip().lower()
        i = eq + 1
        if i < len(text) and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise MessageError("unterminated quoted string in challenge")
            params[key] = text[i + 1 : end]
            i = end + 1
        else:
            end = text.find(",", i)
            end = len(text) if end < 0 else end
            params[key] = text[i:end].strip()
            i = end
    return params
