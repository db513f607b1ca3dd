-- Dashboard login state shared by every web worker (gunicorn runs several processes).
CREATE SCHEMA IF NOT EXISTS dashboard;

-- Failed sign-ins per user and per client address: after a few free attempts each further
-- failure locks that key for an exponentially growing window.
CREATE TABLE dashboard.login_failures (
    scope        text        NOT NULL CHECK (scope IN ('user', 'address')),
    key          text        NOT NULL,
    failures     integer     NOT NULL CHECK (failures > 0),
    last_failure timestamptz NOT NULL,
    locked_until timestamptz,
    PRIMARY KEY (scope, key)
);

-- Server-side sessions: the cookie carries a random token, the table its SHA-256. A request is
-- signed in only while its row exists and has not expired; logout and a password change delete
-- rows, so a saved cookie stops working at once. `credential` fingerprints the password hash the
-- session was opened with: a password changed in the config also ends older sessions.
CREATE TABLE dashboard.sessions (
    token_hash   text        PRIMARY KEY,
    username     text        NOT NULL,
    credential   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_username ON dashboard.sessions (username);

-- A password changed in the dashboard overrides the configured hash (werkzeug format).
CREATE TABLE dashboard.credentials (
    username      text        PRIMARY KEY,
    password_hash text        NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now()
);
