-- Logto's Actions (issue 16): one row per configured action type, the action as JSON
-- ({script, environmentVariables?, contextSample?, enabled, onExecutionError}).
CREATE TABLE actions (
    action_type text PRIMARY KEY,
    config      text NOT NULL,
    updated_at  bigint NOT NULL
);
