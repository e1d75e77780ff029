-- Machine-to-machine applications in organizations (Logto's organization_application_relations),
-- and organization invitations: a document per invitation (the API object, keys in Logto's
-- order) under its organization, so both go when the organization goes.
CREATE TABLE organization_applications (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    application_id  TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, application_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX organization_applications_application ON organization_applications (application_id);

-- `pending_key` is the invitee's email (lowercased) while the invitation is pending, else NULL:
-- one pending invitation per invitee and organization, as Logto's partial unique index has it.
CREATE TABLE organization_invitations (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    pending_key     TEXT,
    doc             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (organization_id, pending_key)
) STRICT;
CREATE INDEX organization_invitations_organization ON organization_invitations (organization_id);

-- Documents written before this migration take the fields Logto's objects now have, in Logto's
-- order (JSON objects keep insertion order, so trailing keys are removed and set again):
-- users gain `cimdClientId` (null) before `isSuspended` and `hasPassword` after it;
-- organizations gain `isTrustedDeviceAllowed`, `color`, `branding`, `customCss` before
-- `createdAt`.
UPDATE users SET doc = json_set(
    json_remove(doc, '$.cimdClientId', '$.isSuspended', '$.hasPassword'),
    '$.cimdClientId', json('null'),
    '$.isSuspended', json(CASE WHEN json_extract(doc, '$.isSuspended') THEN 'true' ELSE 'false' END),
    '$.hasPassword', json(CASE WHEN coalesce(password_hash, '') <> '' THEN 'true' ELSE 'false' END)
) WHERE json_type(doc, '$.hasPassword') IS NULL;

UPDATE organizations SET doc = json_set(
    json_remove(doc, '$.createdAt'),
    '$.isTrustedDeviceAllowed', json('true'),
    '$.color', json('{}'),
    '$.branding', json('{}'),
    '$.customCss', json('null'),
    '$.createdAt', json_extract(doc, '$.createdAt')
) WHERE json_type(doc, '$.color') IS NULL;
