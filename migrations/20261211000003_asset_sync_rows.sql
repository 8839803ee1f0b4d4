-- Provider-hosted results (issue #23): an asynchronous provider's job has its asset row
-- from the moment the provider accepts the submission, with no file yet (`path` and
-- `content_hash` empty, sync status `remote`), then `downloading`, then the file's
-- columns and `downloaded` at completion (the same row), or `error`. One such row per
-- job: a new attempt's submission takes it over.
CREATE UNIQUE INDEX assets_job_pending_idx ON assets (source_generation_id)
    WHERE sync_status <> 'downloaded';

-- A job that ends without its file: failed, the row says `error`; cancelled, the row
-- goes (nothing will ever come).
CREATE FUNCTION generations_end_pending_asset() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'cancelled' THEN
        DELETE FROM assets
        WHERE source_generation_id = NEW.id AND sync_status <> 'downloaded';
    ELSIF NEW.status = 'failed' THEN
        UPDATE assets SET sync_status = 'error'
        WHERE source_generation_id = NEW.id AND sync_status <> 'downloaded';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER generations_end_pending_asset
    AFTER UPDATE OF status ON generations
    FOR EACH ROW
    WHEN (NEW.status IN ('failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION generations_end_pending_asset();
