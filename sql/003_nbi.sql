-- 003: the northbound API (core/nbi, docs/nbi.md).
--
-- * api_tokens: one row per token. The secret is shown once by `luacs token
--   add` and only its SHA-256 is kept; a request presents
--   "lcs_<id>_<secret>", so the row is found by id and the hashes compared
--   in constant time. Revoking deletes the row.
-- * jobs: a task queued for every device a filter matched (POST /jobs). The
--   tasks carry the job's id; progress is counted from them (tasks_job).
-- * devices_id_pattern: id_prefix filters use it (LIKE 'prefix%' under the
--   C collation of text_pattern_ops); it indexes only the primary key's
--   column, which sessions never change, so the devices rows stay HOT.

CREATE TABLE api_tokens (
  id        bigserial PRIMARY KEY,
  name      text NOT NULL UNIQUE,
  role      text NOT NULL CHECK (role IN ('read', 'operate', 'admin')),
  scope_tag text,  -- NULL: the whole fleet
  hash      text NOT NULL,  -- hex SHA-256 of the secret
  created   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  id        bigserial PRIMARY KEY,
  filter    jsonb NOT NULL DEFAULT '{}',
  task      jsonb NOT NULL,
  expires   timestamptz,
  created   timestamptz NOT NULL DEFAULT now(),
  state     text NOT NULL DEFAULT 'queuing' CHECK (state IN ('queuing', 'queued', 'cancelled')),
  matched   bigint NOT NULL DEFAULT 0,
  queued    bigint NOT NULL DEFAULT 0,
  scope_tag text NOT NULL DEFAULT '',  -- the creating token's scope: it limits the job
  creator   text NOT NULL DEFAULT ''   -- the token's name
);

ALTER TABLE tasks ADD COLUMN job_id bigint;
CREATE INDEX tasks_job ON tasks (job_id, state) WHERE job_id IS NOT NULL;
CREATE INDEX tasks_state ON tasks (state, id);
CREATE INDEX tasks_device ON tasks (device_id, id);  -- GET /tasks?device= in any state

CREATE INDEX devices_id_pattern ON devices (id text_pattern_ops);
