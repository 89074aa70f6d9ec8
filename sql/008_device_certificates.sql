-- 008: the client certificate each device logs in with (issue 14,
-- docs/tls.md "Client certificates").
--
-- Written with the session results, by the device's sessions over TLS that
-- presented one ([cwmp] tls_client_ca): the certificate last used, when it
-- was first and last seen. A changed fingerprint (a renewed or a replaced
-- certificate) resets first_seen. last_seen moves at most once an hour, so
-- a periodic Inform does not rewrite the row. Deleted with the device.
CREATE TABLE device_certificates (
  device_id  text PRIMARY KEY,
  subject    text NOT NULL,
  issuer     text NOT NULL,
  serial     text NOT NULL,
  sha256     text NOT NULL,
  not_after  timestamptz,
  first_seen timestamptz NOT NULL,
  last_seen  timestamptz NOT NULL
);
