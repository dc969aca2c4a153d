-- API keys: only each key's SHA-256 is stored, as lowercase hex; the key itself is shown once at creation.
-- Limits left NULL fall back to the server's defaults. Jobs record the key that created them (NULL when the
-- server ran open), and each key's uploaded bytes are summed per UTC day for the daily upload limit.
CREATE TABLE api_keys (
    id                        uuid PRIMARY KEY,
    name                      text NOT NULL UNIQUE CHECK (name <> ''),
    key_sha256                text NOT NULL UNIQUE CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
    max_queued_jobs           integer CHECK (max_queued_jobs > 0),
    max_upload_bytes_per_day  bigint CHECK (max_upload_bytes_per_day > 0),
    created_at                timestamptz NOT NULL DEFAULT now(),
    revoked_at                timestamptz
);

ALTER TABLE jobs ADD COLUMN api_key_id uuid REFERENCES api_keys (id);
CREATE INDEX jobs_api_key_created ON jobs (api_key_id, created_at DESC, id DESC);

CREATE TABLE api_key_uploads (
    api_key_id  uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day         date NOT NULL,
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    PRIMARY KEY (api_key_id, day)
);
