-- The relational groups PL publishes (definition_groups / group_memberships, contract §10.1): only a
-- group listed here is ever changed or deleted by PL; AppV2's own groups are never touched.
CREATE TABLE IF NOT EXISTS pl_group_ledger (
    environment varchar(10) NOT NULL,
    group_id    integer NOT NULL,
    name        text NOT NULL,
    universe    text NOT NULL,
    family      text NOT NULL,
    job_id      uuid,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, group_id)
);
