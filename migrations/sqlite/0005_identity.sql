-- The identity core. Each row's `doc` is the object the Management API answers with (JSON
-- text, keys in Logto's order); the columns beside it are what SQLite must enforce or find rows
-- by: the id, unique keys (emails lowercased: they are unique regardless of case), the parent a
-- row belongs to, the creation time for listing in order. Links between rows are tables of
-- their own whose foreign keys cascade, so deleting a row takes its links with it.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT UNIQUE,
    email_key     TEXT UNIQUE,
    phone         TEXT UNIQUE,
    password_hash TEXT,             -- argon2id (PHC string); never leaves the store
    doc           TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX users_created ON users (created_at);

CREATE TABLE resources (
    id         TEXT PRIMARY KEY,
    indicator  TEXT NOT NULL UNIQUE,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE scopes (
    id          TEXT PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (resource_id, name)
) STRICT;

CREATE TABLE roles (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE organization_roles (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE organization_scopes (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE role_scopes (
    role_id  TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    scope_id TEXT NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, scope_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX role_scopes_scope ON role_scopes (scope_id);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE organization_users (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX organization_users_user ON organization_users (user_id);

CREATE TABLE organization_role_scopes (
    organization_role_id  TEXT NOT NULL REFERENCES organization_roles (id) ON DELETE CASCADE,
    organization_scope_id TEXT NOT NULL REFERENCES organization_scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_role_id, organization_scope_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX organization_role_scopes_scope ON organization_role_scopes (organization_scope_id);

-- A member's roles in one organization: they go when the membership goes.
CREATE TABLE organization_user_roles (
    organization_id      TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    organization_role_id TEXT NOT NULL REFERENCES organization_roles (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, user_id, organization_role_id),
    FOREIGN KEY (organization_id, user_id)
        REFERENCES organization_users (organization_id, user_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX organization_user_roles_role ON organization_user_roles (organization_role_id);
