-- The server secret that signed result URLs are made with (an HMAC-SHA256 of the path and an expiry, see
-- openapi.yaml): one row, written by the first `serve` that starts after this migration (from the system's
-- random source) and read by every API server of the database, so that a URL one server signed opens on
-- any other and after a restart. Deleting the row (it is made again at the next start) ends every signed
-- URL at once.
CREATE TABLE url_signing_secret (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret     bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
