-- 002: compress device parameters with lz4 where the server has it.
--
-- A device row whose parameters pass ~2 kB is compressed in-line; with the
-- default pglz that compression showed up in profiles of the Inform path
-- (bench/README.md). lz4 compresses several times faster for about the same
-- size. A server built without lz4 keeps pglz: this migration then changes
-- nothing and still counts as applied.
DO $$
BEGIN
  ALTER TABLE devices ALTER COLUMN parameters SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'lz4 is not available on this server: device parameters stay pglz';
END
$$;
