-- The queue's estimate of a start time averages the run time of the last 50 completed
-- jobs (`store::generation::jobs::queue_places`): without this index, each estimate
-- sorted every completed job.
CREATE INDEX generations_completed_idx ON generations (completed_at DESC)
    WHERE status = 'completed';
