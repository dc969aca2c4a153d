-- Idempotency keys are scoped to the API key that sent them: two clients that pick the same
-- Idempotency-Key never meet, and a clash can only ever name the client's own job. Jobs of an open server
-- (api_key_id NULL) share one scope, hence NULLS NOT DISTINCT.
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (api_key_id, idempotency_key) NULLS NOT DISTINCT
    WHERE idempotency_key IS NOT NULL;

-- The per-key limit on jobs queued at once counts a key's unfinished jobs on every submission.
CREATE INDEX jobs_api_key_unfinished ON jobs (api_key_id) WHERE status IN ('queued', 'running');
