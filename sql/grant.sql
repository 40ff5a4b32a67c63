-- pgpush: the grants pgpushd's role needs, and nothing more.
--
--   psql -v ON_ERROR_STOP=1 -v role=pgpushd -d yourdb -f sql/grant.sql
--
-- Run it after install.sql, as the owner of the objects or a superuser. The
-- role must exist (CREATE ROLE pgpushd LOGIN NOINHERIT PASSWORD '...').
-- With authentication (--jwt-secret-file), it must also be a member of
-- every role a token may name, which this file does not grant: GRANT
-- dashboard_viewer TO pgpushd (sql/README.md, "Roles"; sql/demo-roles.sql
-- does it for the demo's roles). It gets:
--   CONNECT on the database;
--   USAGE on schema pgpush (to name its objects);
--   EXECUTE on pgpush.dashboard() and pgpush.attached() (PUBLIC has both by
--     default; granted in case a DBA revoked that);
--   EXECUTE on pgpush.registry() (the named dashboards; not PUBLIC's);
--   USAGE on sequence pgpush.version_seq (nextval() of document versions);
--   SELECT on the tables the reference dashboard reads, those of them that
--     exist (public.products, public.stock, public.sales). With a dashboard
--     of your own, grant SELECT on what it reads instead.
--   EXECUTE on pgpush.change_source() (pgpushd checks it matches --change-source).
--   The cluster's (docs/design.md, "Cluster"): EXECUTE on pgpush.feed_store(),
--     feed_error(), feed_fetch(), feed_demand_set() and feed_demand_read(),
--     and SELECT, INSERT, UPDATE, DELETE on the tables they write, pgpush.feed_doc and
--     pgpush.feed_demand (pgpushd's own bookkeeping, nothing of yours).
-- With --change-source logical the role also needs the REPLICATION attribute,
-- which only a superuser grants and this file does not:
--   ALTER ROLE pgpushd REPLICATION;
-- LISTEN needs no privilege. Nothing here allows a write to your data: the
-- dashboard query also runs in a read-only session.
\if :{?role}
\else
\set role pgpushd
\endif

BEGIN;
SET LOCAL client_min_messages = warning;
GRANT CONNECT ON DATABASE :"DBNAME" TO :"role";
GRANT USAGE ON SCHEMA pgpush TO :"role";
GRANT EXECUTE ON FUNCTION pgpush.dashboard(), pgpush.attached(), pgpush.change_source() TO :"role";
GRANT USAGE ON SEQUENCE pgpush.version_seq TO :"role";
GRANT EXECUTE ON FUNCTION pgpush.registry() TO :"role";
GRANT EXECUTE ON FUNCTION pgpush.feed_store(text, text, text, bigint, bigint, text, text, text),
    pgpush.feed_store(text, text, text, bigint, bigint, text, text, text, bigint, text),
    pgpush.feed_error(text, text, text, text, text), pgpush.feed_fetch(text, text, text, bigint),
    pgpush.feed_demand_set(json, text), pgpush.feed_demand_read() TO :"role";
GRANT SELECT, INSERT, UPDATE, DELETE ON pgpush.feed_doc, pgpush.feed_demand TO :"role";
SELECT pg_catalog.format('GRANT SELECT ON %s TO %I', c.oid::pg_catalog.regclass, :'role')
FROM pg_catalog.pg_class c
WHERE c.oid IN (pg_catalog.to_regclass('public.products'), pg_catalog.to_regclass('public.stock'),
                pg_catalog.to_regclass('public.sales'))
ORDER BY c.relname
\gexec
COMMIT;
