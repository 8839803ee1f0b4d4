-- Credit accounting of generation jobs: what each accepted provider submission was
-- charged (and whether the provider refunded it), the job's estimate and net charge,
-- and when an account's balance was last read from its provider.

ALTER TABLE generations
    ADD COLUMN estimated_credits bigint NOT NULL DEFAULT 0,
    ADD COLUMN credits_charged   bigint NOT NULL DEFAULT 0;

ALTER TABLE provider_submissions
    ADD COLUMN credits          bigint  NOT NULL DEFAULT 0,
    ADD COLUMN credits_refunded boolean NOT NULL DEFAULT false;

ALTER TABLE provider_accounts
    ADD COLUMN balance_checked_at timestamptz;
