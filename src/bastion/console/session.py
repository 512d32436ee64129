"""Console sign-in: a signed session cookie that names an API key, never carries it.

A reviewer signs in by pasting their API key once. The browser then holds
``<key id>.<issued>.<nonce>.<mac>``: the MAC is an HMAC-SHA256 under a server secret over
those fields *and the key's stored hash*, so the cookie cannot be forged without the server
secret, is useless once the key is gone, and a stolen cookie never reveals the key. Every
request re-checks the key in the key cache, so a revoked key stops working on its next
request; a session also ends `MAX_AGE_SECONDS` after sign-in.

The server secret is derived from the pseudonymization key (a separate HMAC context), which
every replica of a deployment shares; sessions therefore survive restarts and move between
replicas. An app without a serving service (bare test apps) uses a random per-process secret.

CSRF: every console form carries a token in a hidden field. Signed in, the token is an HMAC
of the session cookie (one per session); before sign-in (and in insecure mode, where there is
no session) it is an HMAC of a random pre-session cookie. Both cookies are HttpOnly and
``SameSite=Strict``, so a cross-site form neither sends them nor can read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bastion.store.keys import ActiveKey

#: the session cookie (signed, names the key)
SESSION_COOKIE = "bastion_console"
#: the pre-session cookie behind the sign-in form's CSRF token (and insecure mode's)
PRESESSION_COOKIE = "bastion_console_pre"
#: the hidden form field every console POST carries
CSRF_FIELD = "csrf_token"
MAX_AGE_SECONDS = 12 * 3600
#: issue times this far in the future are accepted (clock skew between replicas)
SKEW_SECONDS = 60
_CONTEXT = "bastion console session v1"

Lookup = Callable[[str], ActiveKey | None]


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in reviewer, at `request.state.console_session` on console pages."""

    key_id: str
    role: str
    csrf_token: str


class SessionSigner:
    """Issues and verifies session cookies and CSRF tokens under one server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError(f"the session secret must be at least 16 bytes, got {len(secret)}")
        self._secret = secret

    def __repr__(self) -> str:
        return "SessionSigner(secret=***)"

    def _mac(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def issue(self, key: ActiveKey, now: float | None = None) -> str:
        """A new session cookie value for `key`."""
        issued = str(int(time.time() if now is None else now))
        nonce = secrets.token_urlsafe(16)
        mac = self._mac("session", key.id, issued, nonce, key.secret_hash)
        return f"{key.id}.{issued}.{nonce}.{mac}"

    def verify(self, value: str, lookup: Lookup, now: float | None = None) -> ConsoleSession | None:
        """The session `value` stands for, or None when it is malformed, forged, expired, or
        its key is unknown or revoked (`lookup` answers from the key cache)."""
        parts = value.split(".")
        if len(parts) != 4:
            return None
        key_id, issued, nonce, mac = parts
        if not issued.isdigit():
            return None
        age = (time.time() if now is None else now) - int(issued)
        if not -SKEW_SECONDS <= age <= MAX_AGE_SECONDS:
            return None
        key = lookup(key_id)
        if key is None:
            return None
        expected = self._mac("session", key.id, issued, nonce, key.secret_hash)
        if not hmac.compare_digest(expected.encode(), mac.encode()):
            return None
        return ConsoleSession(key.id, key.role, self.csrf_token(value))

    def csrf_token(self, basis: str) -> str:
        """The CSRF token bound to `basis` (a session or pre-session cookie value)."""
        return self._mac("csrf", basis)[:40]

    def csrf_ok(self, basis: str | None, submitted: object) -> bool:
        """Whether `submitted` is the token for `basis`; False when either is missing."""
        if not basis or not isinstance(submitted, str) or not submitted:
            return False
        return hmac.compare_digest(self.csrf_token(basis).encode(), submitted.encode())


def signer_for(app: Any) -> SessionSigner:
    """The app's signer, made on first use and kept on `app.state`.

    Derived from the serving service's pseudonymizer when the app has one (shared by the
    replicas); otherwise random for this process.
    """
    state = app.state
    signer: SessionSigner | None = getattr(state, "console_signer", None)
    if signer is None:
        pseudonymizer = getattr(getattr(state, "service", None), "pseudonymizer", None)
        if pseudonymizer is not None:
            secret = bytes.fromhex(pseudonymizer.mac(_CONTEXT))
        else:
            secret = secrets.token_bytes(32)
        signer = SessionSigner(secret)
        state.console_signer = signer
    return signer


def new_presession() -> str:
    """A fresh pre-session cookie value."""
    return secrets.token_urlsafe(24)
