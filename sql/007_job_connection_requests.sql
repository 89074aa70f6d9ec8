-- 007: bulk jobs that wake their devices (issue 13, docs/nbi.md "Bulk jobs").
--
-- A job made with "connection_request": true sends a connection request to
-- each device it queued a task for, at most `wake_rate` devices a second, in
-- device id order, so that a fleet-wide roll-out starts now without a boot
-- storm of luacs' own making. Only devices whose task is still pending are
-- woken (one that called in by itself meanwhile needs no waking).
-- `wake_through` is the last device a connection request went to: a job
-- interrupted by a restart wakes on from there. `wake_outcomes` counts the
-- requests by outcome ({"informed": 9, "offline": 1, ...}).

ALTER TABLE jobs
  ADD COLUMN wake_rate     integer CHECK (wake_rate > 0),  -- NULL: the job wakes nobody
  ADD COLUMN wake_state    text CHECK (wake_state IN ('waking', 'done', 'cancelled')),
  ADD COLUMN woken         bigint NOT NULL DEFAULT 0,
  ADD COLUMN wake_through  text NOT NULL DEFAULT '',
  ADD COLUMN wake_outcomes jsonb NOT NULL DEFAULT '{}';

-- The waker's keyset over a job's pending tasks.
CREATE INDEX tasks_job_pending_device ON tasks (job_id, device_id)
  WHERE job_id IS NOT NULL AND state = 'pending';
