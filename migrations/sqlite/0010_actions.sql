-- Logto's Actions (issue 16): one row per configured action type, the action as JSON
-- ({script, environmentVariables?, contextSample?, enabled, onExecutionError}).
CREATE TABLE actions (
    action_type TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
