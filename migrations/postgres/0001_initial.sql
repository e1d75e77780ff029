-- hookline's schema on PostgreSQL: the same tables as SQLite's migrations 0001–0007 arrive at,
-- in PostgreSQL's types. Times are milliseconds since the Unix epoch (bigint), as on SQLite.
-- Documents and payloads are text holding JSON exactly as written (key order is part of the
-- Logto-compatible output, which jsonb would not keep).

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE hooks (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    event       text,              -- Logto's legacy single event, or NULL
    events      text[] NOT NULL,   -- event names
    config      text NOT NULL,     -- JSON {url, headers?, retries?, …}
    signing_key text NOT NULL,
    enabled     boolean NOT NULL,
    created_at  bigint NOT NULL,
    -- Bumped by every update: a node's cached target of a hook is good while it matches.
    version     bigint NOT NULL DEFAULT 1
);

CREATE TABLE events (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    payload    text NOT NULL,
    created_at bigint NOT NULL
);

-- A queued delivery (state 0) is due at due_at. A claim pushes due_at forward by the lease:
-- the lease lives in the row, so a node that dies leaves nothing to clean up, and its
-- deliveries are due again when their leases end.
CREATE TABLE deliveries (
    seq        bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order: ties in due_at
    id         text PRIMARY KEY,
    event_id   text NOT NULL,
    hook_id    text NOT NULL,
    event_name text NOT NULL,
    state      smallint NOT NULL DEFAULT 0,   -- 0 queued, 1 succeeded, 2 failed
    attempts   integer NOT NULL DEFAULT 0,
    due_at     bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);
CREATE INDEX deliveries_queued_due ON deliveries (due_at, seq) WHERE state = 0;
CREATE INDEX deliveries_queued_hook ON deliveries (hook_id) WHERE state = 0;

CREATE TABLE attempts (
    seq             bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order, for ties
    id              text NOT NULL,
    delivery_id     text NOT NULL,
    hook_id         text NOT NULL,
    event_name      text NOT NULL,
    attempt         integer NOT NULL,  -- 1 for the first try
    success         boolean NOT NULL,
    response_status integer,
    response_body   text,              -- at most 20 KB
    error           text,
    duration_ms     bigint NOT NULL,
    created_at      bigint NOT NULL
);
CREATE INDEX attempts_hook_time ON attempts (hook_id, created_at);

-- The identity core: documents with the keys the database enforces, and links.
-- seq: insertion order, so that lists are newest first even within one millisecond.

CREATE TABLE users (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    id            text PRIMARY KEY,
    username      text UNIQUE,
    email_key     text UNIQUE,
    phone         text UNIQUE,
    password_hash text,             -- a PHC string or an imported digest; never leaves the store
    doc           text NOT NULL,
    created_at    bigint NOT NULL
);
CREATE INDEX users_created ON users (created_at);

CREATE TABLE resources (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    id         text PRIMARY KEY,
    indicator  text NOT NULL UNIQUE,
    doc        text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE scopes (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    id          text PRIMARY KEY,
    resource_id text NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    name        text NOT NULL,
    doc         text NOT NULL,
    created_at  bigint NOT NULL,
    UNIQUE (resource_id, name)
);

CREATE TABLE roles (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    doc        text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE organizations (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    id         text PRIMARY KEY,
    doc        text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE organization_roles (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    doc        text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE organization_scopes (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    doc        text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE applications (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    id          text PRIMARY KEY,
    secret_hash text NOT NULL DEFAULT '',
    doc         text NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE organization_invitations (
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    pending_key     text,
    doc             text NOT NULL,
    created_at      bigint NOT NULL,
    UNIQUE (organization_id, pending_key)
);
CREATE INDEX organization_invitations_organization ON organization_invitations (organization_id);

CREATE TABLE role_scopes (
    role_id  text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    scope_id text NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, scope_id)
);
CREATE INDEX role_scopes_scope ON role_scopes (scope_id);

CREATE TABLE user_roles (
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE organization_users (
    organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_users_user ON organization_users (user_id);

CREATE TABLE organization_applications (
    organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    application_id  text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, application_id)
);
CREATE INDEX organization_applications_application ON organization_applications (application_id);

CREATE TABLE organization_role_scopes (
    organization_role_id  text NOT NULL REFERENCES organization_roles (id) ON DELETE CASCADE,
    organization_scope_id text NOT NULL REFERENCES organization_scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_role_id, organization_scope_id)
);
CREATE INDEX organization_role_scopes_scope ON organization_role_scopes (organization_scope_id);

CREATE TABLE organization_user_roles (
    organization_id      text NOT NULL,
    user_id              text NOT NULL,
    organization_role_id text NOT NULL REFERENCES organization_roles (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, user_id, organization_role_id),
    FOREIGN KEY (organization_id, user_id)
        REFERENCES organization_users (organization_id, user_id) ON DELETE CASCADE
);
CREATE INDEX organization_user_roles_role ON organization_user_roles (organization_role_id);

-- Short-lived interaction state (failed sign-ins, lockouts, reset codes, code sends), shared
-- by every node so that a limit holds across them.
CREATE TABLE interaction_state (
    space      text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE INDEX interaction_state_expiry ON interaction_state (expires_at);
