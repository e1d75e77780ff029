-- Logto's Actions (issue 16): one row per configured action type, the action as JSON
-- ({script, environmentVariables?, contextSample?, enabled, onExecutionError}).
CREATE TABLE actions (
    action_type text PRIMARY KEY,
    config      text NOT NULL,
    updated_at  bigint NOT NULL
);

-- Every run of an action at sign-in (issue 16): what it answered or why it failed, its
-- console output (a JSON array), how long it took. At most 1,000 a type are kept.
CREATE TABLE action_runs (
    id          text PRIMARY KEY,
    action_type text NOT NULL,
    success     boolean NOT NULL,
    result      text,
    error       text,
    logs        text NOT NULL,
    duration_ms bigint NOT NULL,
    created_at  bigint NOT NULL
);
CREATE INDEX action_runs_type_time ON action_runs (action_type, created_at);
