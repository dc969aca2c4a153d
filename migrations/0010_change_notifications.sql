-- Change notifications for the API servers' memory: every write to what a status poll shows (a job's row,
-- its windows) announces the job's id on `dynstereo_job_changes`, and every write to the API keys announces
-- itself on `dynstereo_key_changes`, whoever writes (a server, a worker's heartbeat or stored window, the
-- lease reaper, retention, `dynstereo keys`). Triggers, not the writers, so that no writer can forget one.
-- NOTIFY is delivered at commit (nothing for a rolled-back write), and a transaction's identical
-- notifications are sent once, so a statement touching every window of a job sends one. Channels are per
-- database, not per schema: a listener may hear of a job of another schema, which costs it one dropped entry.
CREATE FUNCTION announce_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dynstereo_job_changes', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_announce_change AFTER INSERT OR UPDATE OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION announce_job_change();

-- The same for a window's row, whose job is `job_id`.
CREATE FUNCTION announce_job_window_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dynstereo_job_changes', (CASE WHEN TG_OP = 'DELETE' THEN OLD.job_id ELSE NEW.job_id END)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER job_windows_announce_change AFTER INSERT OR UPDATE OR DELETE ON job_windows
    FOR EACH ROW EXECUTE FUNCTION announce_job_window_change();

-- One notice per statement: any change to any key drops every cached answer about keys.
CREATE FUNCTION announce_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dynstereo_key_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_announce_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION announce_key_change();
