-- 004: what the northbound API knows of the files it uploads into [files]
-- dir (PUT /files/{name}, docs/nbi/files.md).
--
-- The bytes stay on disk, where the file server sends them from; this
-- table holds only what the disk does not say: the firmware the file is
-- for (oui, product_class, version), its SHA-256 and who uploaded it. The
-- size and mtime (nanoseconds) of the version that was hashed tell
-- GET /files whether the sha256 still describes the file on disk (one
-- replaced by hand since has none). A table of its own, not columns of
-- `files`: the file server's queries on `files` stay as they are, and a
-- row here never makes the file server look for bytes in PostgreSQL.

CREATE TABLE file_meta (
  name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$'),
  size          bigint NOT NULL,
  mtime_ns      bigint NOT NULL,
  sha256        text NOT NULL,  -- hex
  oui           text,
  product_class text,
  version       text,
  uploaded_by   text NOT NULL DEFAULT '',  -- the token's name
  uploaded      timestamptz NOT NULL DEFAULT now()
);
