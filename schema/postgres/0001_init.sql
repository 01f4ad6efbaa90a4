-- usersync schema. Written for PostgreSQL; SQLite runs it through schema.toSQLite.

CREATE TABLE directories (
    key        TEXT PRIMARY KEY,            -- 'local', or the key generated for a profile
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO directories (key, name, created_at) VALUES ('local', 'Local accounts', CURRENT_TIMESTAMP);

CREATE TABLE profiles (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_lower    TEXT NOT NULL UNIQUE,
    provider      TEXT NOT NULL,            -- azure | okta | csv
    enabled       BOOLEAN NOT NULL,
    directory_key TEXT NOT NULL UNIQUE REFERENCES directories(key),
    config        TEXT NOT NULL,            -- JSON profile without secrets
    secrets       TEXT NOT NULL DEFAULT '', -- AES-256-GCM sealed JSON of the secret fields
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    directory_key  TEXT NOT NULL REFERENCES directories(key),
    external_id    TEXT,                    -- NULL for local users
    username       TEXT NOT NULL,
    username_lower TEXT NOT NULL UNIQUE,    -- usernames are unique case-insensitively
    first_name     TEXT NOT NULL DEFAULT '',
    last_name      TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'active', -- active | disabled
    password_hash  TEXT NOT NULL DEFAULT '',
    manager_id     TEXT,
    attributes     TEXT NOT NULL DEFAULT '{}',
    content_hash   TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    disabled_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_directory_external ON users (directory_key, external_id);
CREATE INDEX users_directory_status ON users (directory_key, status);
CREATE INDEX users_manager ON users (manager_id);

CREATE TABLE directory_groups (
    id            TEXT PRIMARY KEY,
    directory_key TEXT NOT NULL REFERENCES directories(key),
    external_id   TEXT,                     -- NULL for local groups
    name          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX groups_directory_external ON directory_groups (directory_key, external_id);

CREATE TABLE group_members (
    group_id   TEXT NOT NULL REFERENCES directory_groups(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE roles (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE role_members (
    role_id    TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (role_id, user_id)
);

CREATE TABLE sync_runs (
    id                 TEXT PRIMARY KEY,
    profile_id         TEXT NOT NULL,
    profile_name       TEXT NOT NULL,
    provider           TEXT NOT NULL,
    directory_key      TEXT NOT NULL,
    trigger            TEXT NOT NULL,        -- manual | schedule | api | retry
    dry_run            BOOLEAN NOT NULL,
    status             TEXT NOT NULL,        -- running | awaiting_approval | succeeded | failed | cancelled | blocked | skipped
    phase              TEXT NOT NULL,        -- fetch | plan | apply | done
    error              TEXT NOT NULL DEFAULT '',
    workflow_id        TEXT NOT NULL DEFAULT '',
    temporal_run_id    TEXT NOT NULL DEFAULT '',
    started_at         TIMESTAMPTZ NOT NULL,
    finished_at        TIMESTAMPTZ,
    source_document_id TEXT NOT NULL DEFAULT '', -- the CSV copy a run reads, fixed at run start
    fetch_cursor       TEXT NOT NULL DEFAULT '',
    fetch_done         BOOLEAN NOT NULL DEFAULT FALSE,
    apply_step         TEXT NOT NULL DEFAULT '',
    apply_cursor       TEXT NOT NULL DEFAULT '',
    counts             TEXT NOT NULL DEFAULT '{}',
    -- How the run reads its source, fixed by its first fetch: 'full', or
    -- 'delta' (the changes since the provider state of the run it builds
    -- on, base_run_id, whose staging is the snapshot of the whole source).
    sync_mode          TEXT NOT NULL DEFAULT '',
    base_run_id        TEXT NOT NULL DEFAULT '',
    source_state       TEXT NOT NULL DEFAULT '{}', -- provider change state (delta tokens) saved when the run succeeds
    fingerprint        TEXT NOT NULL DEFAULT ''    -- of the profile settings the state is valid for
);
CREATE INDEX sync_runs_profile ON sync_runs (profile_id, started_at);
CREATE INDEX sync_runs_status ON sync_runs (status);

CREATE TABLE sync_staged_users (
    run_id         TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    line           INTEGER NOT NULL DEFAULT 0,
    username       TEXT NOT NULL,
    username_lower TEXT NOT NULL,
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    email          TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    manager_ref    TEXT NOT NULL DEFAULT '',
    manager_ref_lower TEXT NOT NULL DEFAULT '',
    attributes     TEXT NOT NULL DEFAULT '{}',
    password_hash  TEXT NOT NULL DEFAULT '',
    content_hash   TEXT NOT NULL,
    invalid        TEXT NOT NULL DEFAULT '', -- why the record cannot be used; '' when valid
    origin         TEXT NOT NULL DEFAULT '', -- '' fetched; 'snapshot' copied from the snapshot by a delta run
    PRIMARY KEY (run_id, external_id)
);
CREATE INDEX sync_staged_users_username ON sync_staged_users (run_id, username_lower);

CREATE TABLE sync_staged_groups (
    run_id      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (run_id, external_id)
);

CREATE TABLE sync_staged_members (
    run_id            TEXT NOT NULL,
    group_external_id TEXT NOT NULL,
    user_external_id  TEXT NOT NULL,
    PRIMARY KEY (run_id, group_external_id, user_external_id)
);
CREATE INDEX sync_staged_members_user ON sync_staged_members (run_id, user_external_id);

-- The provider's group graph, for sources whose scope and memberships are
-- transitive (Entra ID's nested groups): every group, and every direct
-- membership. In a delta run the rows are changes to the snapshot's graph.
CREATE TABLE sync_staged_pgroups (
    run_id      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    kept        BOOLEAN NOT NULL DEFAULT FALSE, -- group sync keeps it (its kind and the profile's filter)
    removed     BOOLEAN NOT NULL DEFAULT FALSE, -- delta: the group was deleted
    PRIMARY KEY (run_id, external_id)
);

CREATE TABLE sync_staged_edges (
    run_id             TEXT NOT NULL,
    group_external_id  TEXT NOT NULL,
    member_external_id TEXT NOT NULL,
    member_is_group    BOOLEAN NOT NULL DEFAULT FALSE,
    removed            BOOLEAN NOT NULL DEFAULT FALSE, -- delta: the membership ended
    PRIMARY KEY (run_id, group_external_id, member_external_id)
);
CREATE INDEX sync_staged_edges_member ON sync_staged_edges (run_id, member_external_id);

-- Users a delta run takes out of the source: deleted, or out of scope.
CREATE TABLE sync_staged_removals (
    run_id      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, external_id)
);

-- Per-run work sets of ids: 'pending' users a delta run must read by id,
-- 'candidate' users whose scope or memberships a delta may have changed.
CREATE TABLE sync_run_ids (
    run_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    external_id TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, external_id)
);

-- Reflexive, transitive closure of a run's group graph: ancestor is
-- group_external_id itself or a group it is nested in, at any depth.
CREATE TABLE sync_run_ancestry (
    run_id               TEXT NOT NULL,
    group_external_id    TEXT NOT NULL,
    ancestor_external_id TEXT NOT NULL,
    PRIMARY KEY (run_id, group_external_id, ancestor_external_id)
);
CREATE INDEX sync_run_ancestry_ancestor ON sync_run_ancestry (run_id, ancestor_external_id);

-- What the last successful run of a profile's directory left for the next
-- one: the run whose staging is the snapshot of the complete source, the
-- provider's change state, and when the last full sync was.
CREATE TABLE sync_state (
    directory_key   TEXT PRIMARY KEY,
    snapshot_run_id TEXT NOT NULL,
    last_run_id     TEXT NOT NULL,
    source_state    TEXT NOT NULL DEFAULT '{}',
    fingerprint     TEXT NOT NULL DEFAULT '',
    full_at         TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE sync_plan (
    run_id      TEXT NOT NULL,
    external_id TEXT NOT NULL,   -- staged external id; for a departed user its own external id
    user_id     TEXT,            -- the matched directory user, when one exists
    action      TEXT NOT NULL,   -- create | update | reenable | unchanged | disable | skipped | conflict | ignore
    reason      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, external_id)
);
CREATE INDEX sync_plan_action ON sync_plan (run_id, action, external_id);
CREATE INDEX sync_plan_user ON sync_plan (run_id, user_id);

-- Apply's manager and membership changes, computed set-based once per run
-- and then applied (and recorded) batch by batch.
CREATE TABLE sync_plan_managers (
    run_id        TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    username      TEXT NOT NULL,
    manager_ref   TEXT NOT NULL,
    current_id    TEXT,
    current_name  TEXT NOT NULL DEFAULT '',
    resolved_id   TEXT,
    resolved_name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, user_id)
);

CREATE TABLE sync_plan_members (
    run_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    op         TEXT NOT NULL, -- add | remove
    username   TEXT NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (run_id, user_id, group_id)
);

CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    category   TEXT NOT NULL,               -- UserSync | UserSyncConfig | Directory
    action     TEXT NOT NULL,
    connection TEXT NOT NULL DEFAULT '',
    run_id     TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_run ON audit_log (run_id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE change_ledger (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       TEXT NOT NULL,
    subject_type TEXT NOT NULL,             -- user | group
    subject_id   TEXT NOT NULL,
    username     TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    changes      TEXT NOT NULL DEFAULT '{}',
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX change_ledger_run ON change_ledger (run_id, id);

CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'text/csv',
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE document_chunks (
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (document_id, seq)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
