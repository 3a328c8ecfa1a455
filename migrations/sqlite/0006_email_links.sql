-- Confirmed email addresses and the links mailed to accounts' owners
-- (`comms_core::accounts`), sessions ended by a password reset, and the
-- server's generated secrets.
--
-- Accounts made before this version count as confirmed: the column's
-- default says so, which also covers an account that a node of the previous
-- release makes after this migration ran (new code always sets the value).
-- Columns with constant defaults and new tables rewrite no rows, so this is
-- safe to apply while nodes of the previous release are serving.
ALTER TABLE accounts ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 1;
-- Raised by a password reset; a session remembers the value it logged in
-- with and ends when it no longer matches.
ALTER TABLE accounts ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

-- Tokens of mailed links, each single use: taking one deletes it.
CREATE TABLE account_tokens (
    -- SHA-256 of the token, lower-case hex: the token itself is only in
    -- the email.
    token_hash TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- confirm_email or reset_password.
    purpose    TEXT    NOT NULL,
    -- Milliseconds since the epoch; expired rows are deleted as new ones
    -- are added.
    expires_at INTEGER NOT NULL
);
CREATE INDEX account_tokens_account ON account_tokens (account_id);
CREATE INDEX account_tokens_expiry ON account_tokens (expires_at);

-- Secrets the server generates once and every node shares, such as the
-- key that signs visitors' form cookies.
CREATE TABLE server_secrets (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
