-- 006: STUN credentials and the UDP outcome (issue 13, docs/connection-requests.md).
--
-- The STUNUsername/STUNPassword luacs itself set on a device with
-- SetParameterValues, next to its ConnectionRequestUsername/Password: the
-- built-in STUN server checks MESSAGE-INTEGRITY with them. NULL: luacs did
-- not set that one (a password alone goes with the STUNUsername the device
-- reports).
ALTER TABLE connection_request_credentials
  ADD COLUMN stun_username text,
  ADD COLUMN stun_password text;

-- A UDP connection request has no answer: its outcome is `sent` once its
-- datagrams are out (then the Inform closes it as it closes an answered
-- HTTP one).
COMMENT ON COLUMN connection_requests.outcome IS
  'NULL while running; answered | sent | auth_failed | offline | timed_out | denied | no_url | error | unavailable';
