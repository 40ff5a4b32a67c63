-- Remove pgpush from a database: the doorbell trigger of every table it is
-- attached to, then the schema pgpush and everything in it (the registry of
-- named dashboards included). The data tables
-- (sql/schema.sql) and their rows stay.
--
-- Idempotent: a database without pgpush is left as it is.
--   psql -v ON_ERROR_STOP=1 -d yourdb -f sql/uninstall.sql

BEGIN;

SET LOCAL client_min_messages = warning;

DO $$
DECLARE
    doorbell  regprocedure := pg_catalog.to_regprocedure('pgpush.doorbell()');
    trg       record;
    blockers  text;
BEGIN
    -- Every trigger that calls the doorbell, whatever its name and whoever
    -- attached it, not only those on sales and stock.
    FOR trg IN
        SELECT t.tgname, t.tgrelid::regclass AS tbl
        FROM pg_catalog.pg_trigger t
        WHERE t.tgfoid = doorbell
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trg.tgname, trg.tbl);
    END LOOP;

    -- The registry's own trigger (on pgpush.dashboards, in the schema
    -- dropped below) is no blocker; drop it before the check looks.
    IF pg_catalog.to_regclass('pgpush.dashboards') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS pgpush_registry_changed ON pgpush.dashboards;
    END IF;

    -- DROP SCHEMA ... CASCADE would also drop, silently, anything outside
    -- pgpush built on it (a view calling pgpush.dashboard(), say). Refuse
    -- instead, and say what is in the way.
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%s %s', o.type, o.identity), ', ')
    INTO blockers
    FROM pg_catalog.pg_depend d
    CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
    CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) r
    WHERE d.deptype = 'n'
      AND (r.schema = 'pgpush' OR (r.type = 'schema' AND r.identity = 'pgpush'))
      AND o.schema IS DISTINCT FROM 'pgpush'
      AND NOT (o.type = 'schema' AND o.identity = 'pgpush');
    IF blockers IS NOT NULL THEN
        RAISE EXCEPTION 'pgpush uninstall: objects outside schema pgpush depend on it: %', blockers
            USING HINT = 'Drop them (or move them into schema pgpush) and run uninstall.sql again.';
    END IF;
END
$$;

-- The publication of --change-source logical lives outside the schema.
DROP PUBLICATION IF EXISTS pgpush;
DROP SCHEMA IF EXISTS pgpush CASCADE;

COMMIT;
