-- Logto's Actions (issue 16): one row per configured action type, the action as JSON
-- ({script, environmentVariables?, contextSample?, enabled, onExecutionError}).
CREATE TABLE actions (
    action_type TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- Every run of an action at sign-in (issue 16): what it answered or why it failed, its
-- console output (a JSON array), how long it took. At most 1,000 a type are kept.
CREATE TABLE action_runs (
    id          TEXT PRIMARY KEY,
    action_type TEXT NOT NULL,
    success     INTEGER NOT NULL,
    result      TEXT,
    error       TEXT,
    logs        TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX action_runs_type_time ON action_runs (action_type, created_at);
