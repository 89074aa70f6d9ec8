-- 001: the fleet. Applied once, in one transaction, by core/store/migrate.cc.
--
-- Choices, for the write path first (docs/performance-budget.md §3b, §6):
-- * devices holds one row per device, written once per session by one
--   multi-row upsert per batch. Parameters live in that row as jsonb
--   {name: [value, type, read_at_epoch_seconds]}, merged with `||`: an
--   Inform's 10-20 values stay in-line (< 2 kB, no TOAST), so a session costs
--   one row version instead of 10-20 rows of a narrow (device, name) table
--   and its index entries. The price is that a device with a large stored
--   tree (a full GetParameterValues) rewrites the whole document on each
--   write; if that becomes common, split the full tree into its own table.
-- * fillfactor 80 and no index on anything a session changes (last_inform,
--   remote_address, parameters, last_events) keep those updates HOT: no
--   index writes, page-local pruning. tags has a GIN index (the API selects
--   by tag); it does not break HOT because tags rarely change.
-- * No foreign keys to devices: a TransferComplete or a task can be written
--   before the write-behind batch that creates its device row, and FK checks
--   would cost a lookup per row on the hot path. Deleting a device deletes
--   from each table in one transaction.
-- * Times are timestamptz; the CPE's own transfer times are kept as sent
--   (text), as CPEs get dateTime wrong.

CREATE TABLE devices (
  id              text PRIMARY KEY,  -- OUI-ProductClass-Serial, escaped as GenieACS does
  oui             text NOT NULL DEFAULT '',
  product_class   text NOT NULL DEFAULT '',
  serial_number   text NOT NULL DEFAULT '',
  manufacturer    text NOT NULL DEFAULT '',
  data_model_root text NOT NULL DEFAULT '',  -- InternetGatewayDevice | Device
  first_seen      timestamptz NOT NULL,
  last_inform     timestamptz NOT NULL,
  last_boot       timestamptz,
  last_bootstrap  timestamptz,
  remote_address  text NOT NULL DEFAULT '',
  last_events     text[] NOT NULL DEFAULT '{}',
  tags            text[] NOT NULL DEFAULT '{}',
  parameters      jsonb NOT NULL DEFAULT '{}'
) WITH (fillfactor = 80);

CREATE INDEX devices_tags ON devices USING gin (tags);

-- Tasks queued for a device (API, policy functions). A pending task with a
-- unique_key is unique per device: queuing it again replaces its args.
CREATE TABLE tasks (
  id         bigserial PRIMARY KEY,
  device_id  text NOT NULL,
  name       text NOT NULL,
  args       jsonb NOT NULL DEFAULT '{}',
  created    timestamptz NOT NULL DEFAULT now(),
  expires    timestamptz,
  state      text NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'done', 'fault', 'expired')),
  finished   timestamptz,
  result     jsonb,
  unique_key text  -- NULL: none
);

CREATE INDEX tasks_pending ON tasks (device_id, id) WHERE state = 'pending';
CREATE UNIQUE INDEX tasks_pending_key ON tasks (device_id, unique_key) WHERE state = 'pending';
CREATE INDEX tasks_expiry ON tasks (expires) WHERE state = 'pending' AND expires IS NOT NULL;

-- Every luacs node drops its cached copy of a device when a task is queued
-- for it (by another node, the API or plain SQL).
CREATE FUNCTION luacs_task_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('luacs_task', NEW.device_id);
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_queued AFTER INSERT ON tasks
  FOR EACH ROW EXECUTE FUNCTION luacs_task_queued();

-- One row per device and fault source; a repeat bumps retries and last_seen.
CREATE TABLE faults (
  device_id  text NOT NULL,
  source     text NOT NULL,  -- cwmp.9005, task, session, policy ...
  code       bigint NOT NULL DEFAULT 0,
  message    text NOT NULL DEFAULT '',
  detail     jsonb NOT NULL DEFAULT '{}',
  retries    integer NOT NULL DEFAULT 0,
  first_seen timestamptz NOT NULL DEFAULT now(),
  last_seen  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, source)
);

-- Downloads/Uploads sent, and their TransferComplete (or an autonomous one).
CREATE TABLE transfers (
  id            bigserial PRIMARY KEY,
  device_id     text NOT NULL,
  command_key   text NOT NULL DEFAULT '',
  is_download   boolean NOT NULL DEFAULT true,
  file_type     text NOT NULL DEFAULT '',
  url           text NOT NULL DEFAULT '',
  sent_at       timestamptz,
  completed_at  timestamptz,
  fault_code    bigint,
  fault_string  text,
  start_time    text,  -- as the CPE sent them
  complete_time text,
  autonomous    boolean NOT NULL DEFAULT false
);

CREATE INDEX transfers_device ON transfers (device_id, id);
CREATE INDEX transfers_open ON transfers (device_id, command_key) WHERE completed_at IS NULL;

-- Files served on :7567 (.alter scripts, firmware manifests, images). Small
-- generated files are kept in-line; large images on disk (path). STORAGE
-- EXTERNAL: stored uncompressed, so a Range request reads only the TOAST
-- chunks it needs (images are compressed already).
CREATE TABLE files (
  id           bigserial PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  content_type text NOT NULL DEFAULT 'application/octet-stream',
  bytes        bytea,
  path         text,
  size         bigint NOT NULL,
  sha256       text NOT NULL,  -- hex; the ETag
  token        text,           -- access token in the URL; NULL = none
  device_id    text,           -- a per-device file (its .alter script)
  created      timestamptz NOT NULL DEFAULT now(),
  CHECK ((bytes IS NULL) <> (path IS NULL))
);

ALTER TABLE files ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE INDEX files_device ON files (device_id) WHERE device_id IS NOT NULL;

-- One row per session, append-only, deleted after [store]
-- session_log_retention in small batches. BRIN on `at` finds the old rows
-- for next to nothing (rows arrive in time order).
CREATE TABLE session_log (
  device_id text NOT NULL,
  at        timestamptz NOT NULL,
  summary   jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX session_log_device ON session_log (device_id, at);
CREATE INDEX session_log_at ON session_log USING brin (at);
