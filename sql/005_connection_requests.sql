-- 005: connection requests (issue 13, docs/nbi.md "Connection requests").
--
-- One row per attempt to wake a device. `outcome` is NULL while the attempt
-- runs, then answered | auth_failed | offline | timed_out | denied | no_url
-- | error. An answered attempt is closed by the device's Inform with
-- `6 CONNECTION REQUEST`: `informed` and `latency_ms` (request -> Inform).

CREATE TABLE connection_requests (
  id          bigserial PRIMARY KEY,
  device_id   text NOT NULL,
  transport   text NOT NULL DEFAULT 'http' CHECK (transport IN ('http', 'udp', 'xmpp')),
  requested   timestamptz NOT NULL DEFAULT now(),
  finished    timestamptz,
  outcome     text,
  http_status integer,
  detail      text NOT NULL DEFAULT '',
  informed    timestamptz,
  latency_ms  bigint
);

CREATE INDEX connection_requests_device ON connection_requests (device_id, id);

-- The ConnectionRequestUsername/Password luacs itself set on a device with
-- SetParameterValues: a CPE reads them back empty, so luacs remembers what
-- it wrote. They win over [connection_request] username/password. NULL: luacs
-- did not set that one (a password alone goes with the username the device
-- reports).
CREATE TABLE connection_request_credentials (
  device_id text PRIMARY KEY,
  username  text,
  password  text,
  updated   timestamptz NOT NULL DEFAULT now()
);
