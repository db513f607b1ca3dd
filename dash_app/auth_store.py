"""Login state in PostgreSQL, shared by every web worker: failed attempts with exponential
lockout per user and per address, server-side sessions, and passwords changed in the dashboard.

Its own small read-write pool (the data pool is read-only). The lockout policy is pure
(`lock_delay_s`); the store applies it under row locks so parallel attempts on several workers
cannot slip past it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from stock_assets.lib.settings import DbSettings

FREE_ATTEMPTS = 5  # failures per user or address before the first lock
BASE_LOCK_S = 1.0  # the 5th failure locks 1 s, each further one doubles it ...
MAX_LOCK_S = 15 * 60.0  # ... up to 15 minutes
FAILURE_MEMORY = timedelta(minutes=30)  # a key's count restarts after this long without failures


def lock_delay_s(failures: int) -> float:
    """How long a key is locked after its `failures`-th consecutive failure."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return min(BASE_LOCK_S * 2 ** (failures - FREE_ATTEMPTS), MAX_LOCK_S)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def credential_fingerprint(password_hash: str) -> str:
    """Names the password a session was opened with, without storing the hash again."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Locked:
    scopes: tuple[str, ...]  # "user" and/or "address"
    retry_after_s: float


class AuthStore:
    def __init__(self, settings: DbSettings) -> None:
        self.pool = ConnectionPool(
            make_conninfo(settings.conninfo(), application_name="stock-dashboard-auth"),
            min_size=0,
            max_size=4,
            open=True,
            name="dashboard-auth",
        )

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection(timeout=10) as conn, conn.transaction():
            yield conn

    # --- attempts ------------------------------------------------------------------------

    def begin_attempt(self, username: str, address: str) -> Locked | None:
        """Count a sign-in attempt as a failure up front (`succeeded` resets the counts) and
        lock each key for `lock_delay_s(its failures)`. An attempt on a locked user or address
        is refused (Locked, with the time left) without checking the password, and counts too:
        hammering a lock extends it, so 20 quick wrong passwords lock for the full 15 minutes.
        Row locks serialise parallel attempts from several workers."""
        keys = (("user", username), ("address", address))
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT scope FROM dashboard.login_failures"
                " WHERE (scope, key) IN ((%s, %s), (%s, %s)) AND locked_until > now()"
                " FOR UPDATE",
                (*keys[0], *keys[1]),
            ).fetchall()
            was_locked = {r[0] for r in rows}
            until = {}
            for scope, key in keys:
                failures = conn.execute(
                    "INSERT INTO dashboard.login_failures AS f (scope, key, failures,"
                    " last_failure) VALUES (%s, %s, 1, now())"
                    " ON CONFLICT (scope, key) DO UPDATE SET last_failure = now(),"
                    "   failures = CASE WHEN f.last_failure < now() - %s THEN 1"
                    "                   ELSE f.failures + 1 END"
                    " RETURNING failures",
                    (scope, key, FAILURE_MEMORY),
                ).fetchone()[0]  # type: ignore[index]
                delay = lock_delay_s(failures)
                if delay:
                    until[scope] = conn.execute(
                        "UPDATE dashboard.login_failures"
                        " SET locked_until = greatest(locked_until, now() + %s)"
                        " WHERE scope = %s AND key = %s"
                        " RETURNING extract(epoch FROM locked_until - now())",
                        (timedelta(seconds=delay), scope, key),
                    ).fetchone()[0]  # type: ignore[index]
        if not was_locked:
            return None
        scopes = tuple(k for k, _ in keys if k in was_locked)  # user first
        return Locked(scopes, float(max(until[s] for s in scopes)))

    def succeeded(self, username: str, address: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM dashboard.login_failures"
                " WHERE (scope, key) IN (('user', %s), ('address', %s))",
                (username, address),
            )

    # --- sessions ------------------------------------------------------------------------

    def open_session(self, username: str, password_hash: str, lifetime: timedelta) -> str:
        """A new session; returns the token for the cookie (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        with self._tx() as conn:
            conn.execute("DELETE FROM dashboard.sessions WHERE expires_at < now()")
            conn.execute(
                "INSERT INTO dashboard.sessions (token_hash, username, credential, expires_at)"
                " VALUES (%s, %s, %s, now() + %s)",
                (token_hash(token), username, credential_fingerprint(password_hash), lifetime),
            )
        return token

    def session_user(self, token: str, configured_hash: str) -> str | None:
        """The user of a live session opened with the current password, else None."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT s.username, s.credential, c.password_hash FROM dashboard.sessions s"
                " LEFT JOIN dashboard.credentials c USING (username)"
                " WHERE s.token_hash = %s AND s.expires_at > now()",
                (token_hash(token),),
            ).fetchone()
        if row is None:
            return None
        username, credential, changed_hash = row
        current = credential_fingerprint(changed_hash or configured_hash)
        return username if secrets.compare_digest(credential, current) else None

    def close_session(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM dashboard.sessions WHERE token_hash = %s", (token_hash(token),)
            )

    # --- passwords -----------------------------------------------------------------------

    def password_hash(self, username: str) -> str | None:
        """The hash set by a password change in the dashboard (None: use the configured one)."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT password_hash FROM dashboard.credentials WHERE username = %s", (username,)
            ).fetchone()
        return row[0] if row else None

    def change_password(self, username: str, new_hash: str) -> None:
        """Store the new hash and end every session of the user, in one transaction."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO dashboard.credentials (username, password_hash) VALUES (%s, %s)"
                " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
                "   changed_at = now()",
                (username, new_hash),
            )
            conn.execute("DELETE FROM dashboard.sessions WHERE username = %s", (username,))
