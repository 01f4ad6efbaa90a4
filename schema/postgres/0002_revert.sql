-- Reverting a run (issue 19). A revert is a run of its own (trigger
-- 'revert') that names the run it reverts; its work items are computed once
-- from that run's ledger and applied in batches, like a sync's plan.
ALTER TABLE sync_runs ADD COLUMN revert_of TEXT NOT NULL DEFAULT '';

CREATE TABLE sync_revert_items (
    run_id     TEXT NOT NULL,            -- the revert run
    entry_id   BIGINT NOT NULL,          -- the reverted run's ledger entry
    seq        INTEGER NOT NULL,         -- items of one entry, in order
    user_id    TEXT NOT NULL,
    username   TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,            -- field | status | manager | member
    field      TEXT NOT NULL DEFAULT '', -- the field; for a membership the group id
    from_value TEXT NOT NULL DEFAULT '', -- the value now (what the run left)
    to_value   TEXT NOT NULL DEFAULT '', -- the value the revert sets
    from_label TEXT NOT NULL DEFAULT '', -- names shown for ids (manager, group)
    to_label   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, entry_id, seq)
);
