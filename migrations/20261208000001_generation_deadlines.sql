-- Issue 22: a job's deadline. A job not started (pending or paused) when its deadline
-- passes is cancelled with error code `deadline_exceeded` and never claimed; a
-- processing one is cancelled at the provider where the provider has a call for it.
-- NULL: no deadline.
ALTER TABLE generations ADD COLUMN deadline_at timestamptz;

-- The deadline sweep looks at unfinished jobs with a deadline only.
CREATE INDEX generations_deadline ON generations (deadline_at)
    WHERE deadline_at IS NOT NULL AND status IN ('pending', 'paused', 'processing');
