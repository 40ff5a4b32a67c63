-- Demo roles, a tenant policy and a named dashboard: who sees what.
--
-- For the demo and the tests (./quickstart demo loads it); read it as an
-- example of what sql/README.md ("Roles", "Row-level security") describes.
--   psql -v ON_ERROR_STOP=1 -v role=pgpushd -d yourdb -f sql/demo-roles.sql
-- after schema.sql, install.sql and grant.sql (-v role: pgpushd's login
-- role, default pgpushd; it must exist).
--
-- It creates (roles are cluster-wide; all NOLOGIN, nobody logs in as them):
--   dashboard_viewer   a shop-floor screen: every store, no customer data
--                      (column privileges without customer_name and
--                      customer_email, so pgpush.dashboard() leaves them out);
--   dashboard_manager  everything;
--   dashboard_store    one store's screen: the rows of the store its token's
--                      store_id claim names (row-level security), no customer
--                      data;
-- and grants all three to pgpushd's role, which must be a member of every
-- role a token may name (SET LOCAL ROLE). It adds the column sales.store_id
-- (existing and new rows get a store 1 to 3 at random: a demo), enables
-- row-level security on sales with the policies below, and registers the
-- dashboard 'store' (namespace /store): pgpush_demo.store_dashboard(), the
-- reference document plus storeId, one audience per store_id.
--
-- Idempotent. Nothing here is needed without authentication; the daemon's
-- own role still reads every row and column (no-auth mode shows what it
-- showed before).

\if :{?role}
\else
\set role pgpushd
\endif

BEGIN;
SET LOCAL client_min_messages = warning;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dashboard_viewer', 'dashboard_manager', 'dashboard_store'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- ------------------------------------------------------------- the data --

-- Which store made the sale. A demo: the simulator does not say, so a new
-- sale goes to a store at random.
ALTER TABLE public.sales ADD COLUMN IF NOT EXISTS store_id integer;
UPDATE public.sales SET store_id = 1 + (id % 3)::integer WHERE store_id IS NULL;
ALTER TABLE public.sales ALTER COLUMN store_id SET DEFAULT 1 + pg_catalog.floor(pg_catalog.random() * 3)::integer;
CREATE INDEX IF NOT EXISTS sales_store_id_sold_at_idx ON public.sales (store_id, sold_at);

-- ----------------------------------------------------------- privileges --

-- What pgpush.dashboard() reads. The viewer and the store screens may read
-- every column of sales but the customer's: pgpush.dashboard() checks
-- has_column_privilege() and leaves customerName and customerEmail out.
GRANT USAGE ON SCHEMA pgpush TO dashboard_viewer, dashboard_manager, dashboard_store;
GRANT EXECUTE ON FUNCTION pgpush.dashboard() TO dashboard_viewer, dashboard_manager, dashboard_store;
GRANT SELECT ON public.products, public.stock TO dashboard_viewer, dashboard_manager, dashboard_store;
REVOKE ALL ON public.sales FROM dashboard_viewer, dashboard_store;
GRANT SELECT (id, product_id, quantity, unit_price, sold_at, store_id) ON public.sales
    TO dashboard_viewer, dashboard_store;
GRANT SELECT ON public.sales TO dashboard_manager;

-- pgpushd's login role switches to them (SET LOCAL ROLE): it must be a
-- member. It needs no more than membership: its own grants (grant.sql) are
-- what it reads with in no-auth mode, and it may be NOINHERIT.
GRANT dashboard_viewer, dashboard_manager, dashboard_store TO :"role";

-- --------------------------------------------------- row-level security --

-- The table's owner is not subject to it (writers running as the owner,
-- like the simulator, are unaffected); every other role sees only what a
-- policy lets it see. Policies of one command are OR'ed.
ALTER TABLE public.sales ENABLE ROW LEVEL SECURITY;

-- The viewer, the manager and pgpushd's own role (no-auth mode, the
-- default dashboard) see every store. pgpushd's role is named, not left to
-- inherit it through its memberships, which it may not (NOINHERIT).
DROP POLICY IF EXISTS demo_every_store ON public.sales;
CREATE POLICY demo_every_store ON public.sales FOR SELECT
    TO dashboard_viewer, dashboard_manager, :"role"
    USING (true);

-- A store's screen sees its store's sales: the store_id claim of the token,
-- as PostgREST passes claims, in request.jwt.claims (pgpushd sets it per
-- audience with set_config(..., true)). nullif: once set in a session, the
-- setting reads '' outside a transaction that set it, not NULL. The scalar
-- subquery is evaluated once per query, not once per row. A token without
-- the claim sees nothing; a claim that is not an integer fails the query.
DROP POLICY IF EXISTS demo_own_store ON public.sales;
CREATE POLICY demo_own_store ON public.sales FOR SELECT
    TO dashboard_store
    USING (store_id = (SELECT (NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::json
                               ->> 'store_id')::integer));

-- ---------------------------------------------------- a named dashboard --

CREATE SCHEMA IF NOT EXISTS pgpush_demo;
COMMENT ON SCHEMA pgpush_demo IS 'the pgpush demo''s own dashboards (sql/demo-roles.sql)';

-- The reference document as the role sees it (row-level security filters
-- the sales), plus storeId: the store the audience's claims name, so a
-- screen can say which store it shows. Not SECURITY DEFINER: it runs as the
-- audience's role, and must.
CREATE OR REPLACE FUNCTION pgpush_demo.store_dashboard()
RETURNS json
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims json := NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::json;
BEGIN
    RETURN (pgpush.dashboard()::jsonb
            || pg_catalog.jsonb_build_object('storeId', (claims ->> 'store_id')::integer))::json;
END
$$;
COMMENT ON FUNCTION pgpush_demo.store_dashboard() IS
    'demo: the reference dashboard of the store named by the store_id claim (row-level security), plus storeId';

GRANT USAGE ON SCHEMA pgpush_demo TO dashboard_viewer, dashboard_manager, dashboard_store, :"role";
GRANT EXECUTE ON FUNCTION pgpush_demo.store_dashboard()
    TO dashboard_viewer, dashboard_manager, dashboard_store, :"role";

-- Namespace /store: one audience per (role, store_id).
SELECT pgpush.register_dashboard('store', 'pgpush_demo.store_dashboard()', '{public.sales,public.stock}', '{store_id}');

COMMIT;
