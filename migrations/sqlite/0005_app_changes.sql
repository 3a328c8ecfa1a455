-- Every change to an app (status, keys, origins, quotas, deletion) is
-- recorded here in the transaction that makes it; every node polls the
-- table and applies the changes it has not seen (`comms_core::changes`),
-- whichever process made them (a node, the command line). Rows are pruned
-- after an hour.
CREATE TABLE app_changes (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    at     INTEGER NOT NULL
);

-- The API key an endpoint was created with (NULL: made in the portal, by
-- the demo, or before this version), so a leaked key's endpoints can be
-- revoked with it.
ALTER TABLE endpoints ADD COLUMN key_id INTEGER REFERENCES api_keys (id) ON DELETE SET NULL;
CREATE INDEX endpoints_key ON endpoints (key_id);
