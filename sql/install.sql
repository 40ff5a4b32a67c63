-- pgpush: the doorbell triggers, the reference dashboard and the registry
-- of named dashboards.
--
-- Everything pgpush owns lives in the schema "pgpush"; sql/uninstall.sql
-- removes it. Load sql/schema.sql first: the first install attaches the
-- doorbell to public.sales and public.stock, and the reference
-- pgpush.dashboard() reads them (with tables of your own, attach them and
-- point pgpushd --query at your own dashboard; see sql/README.md).
--
-- Idempotent: rerun it to upgrade. The channel setting, the set of
-- attached tables and the registered dashboards survive a rerun.
--   psql -v ON_ERROR_STOP=1 -d yourdb -f sql/install.sql

BEGIN;

-- Reruns are normal: no "already exists, skipping" noise.
SET LOCAL client_min_messages = warning;

CREATE SCHEMA IF NOT EXISTS pgpush;
COMMENT ON SCHEMA pgpush IS 'pgpush: doorbell triggers and the dashboard document for pgpushd';

-- ---------------------------------------------------------------- settings --

-- One row. A table rather than a constant function so that rerunning this
-- file (CREATE OR REPLACE) never resets a channel the DBA has changed.
CREATE TABLE IF NOT EXISTS pgpush.settings (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- pg_notify() rejects '' and names of 64 bytes or more (NAMEDATALEN);
    -- refuse them here, not in a writer's transaction.
    channel    text NOT NULL DEFAULT 'pgpush'
               CHECK (channel <> '' AND octet_length(channel) < 64)
);
COMMENT ON TABLE pgpush.settings IS
    'pgpush settings (one row). channel: the NOTIFY channel of the doorbell; pgpushd --channel must match it';

CREATE OR REPLACE FUNCTION pgpush.channel()
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The fallback keeps writers working even if the row was deleted.
    SELECT coalesce((SELECT s.channel FROM pgpush.settings s), 'pgpush')
$$;
COMMENT ON FUNCTION pgpush.channel() IS 'the default doorbell channel (pgpush.settings.channel)';

-- ---------------------------------------------------------------- doorbell --

-- Statement-level trigger function: one constant, tiny payload per
-- statement, so PostgreSQL folds a whole transaction's notifications for a
-- table into one queue entry, and the 8000-byte payload limit (which would
-- roll back the writer) can never be reached. The payload is only the table
-- name: pgpushd recomputes the whole dashboard anyway.
--
-- SECURITY DEFINER so that writers need no privilege on schema pgpush; it
-- only reads the channel and notifies. search_path is pinned because of it.
CREATE OR REPLACE FUNCTION pgpush.doorbell()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- TG_ARGV[0], set by pgpush.attach(tbl, channel), overrides the
    -- channel. The settings are read inline, not through pgpush.channel():
    -- a SQL function call here costs several times the rest of the trigger.
    PERFORM pg_catalog.pg_notify(
        coalesce(TG_ARGV[0], (SELECT s.channel FROM pgpush.settings s), 'pgpush'),
        TG_TABLE_NAME);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION pgpush.doorbell() IS
    'statement-level trigger: NOTIFY <channel>, ''<table name>''; attach it with pgpush.attach()';

-- ------------------------------------------------------------ change source --
--
-- One list of watched tables (pgpush.watched, filled by pgpush.attach), two
-- ways to ring (pgpush.set_change_source):
--   'notify'  (the default) a statement-level doorbell trigger on each
--             watched table NOTIFYs pgpushd; simple, needs nothing from the
--             server, but every writing transaction takes the cluster-wide
--             NOTIFY lock at commit;
--   'logical' no trigger at all: the publication "pgpush" lists the watched
--             tables and pgpushd --change-source logical reads the changes
--             from logical replication (wal_level = logical, a role with
--             REPLICATION; see sql/README.md).
-- attach and detach follow the current choice. The publication is an object
-- of the database, outside schema pgpush: ALTER PUBLICATION needs its owner,
-- and adding a table needs that table's owner too, so run attach, detach and
-- set_change_source as the role that owns the watched tables (or a
-- superuser) and that created the publication.

ALTER TABLE pgpush.settings ADD COLUMN IF NOT EXISTS change_source text NOT NULL DEFAULT 'notify'
    CONSTRAINT settings_change_source_check CHECK (change_source IN ('notify', 'logical'));
COMMENT ON COLUMN pgpush.settings.change_source IS
    'how watched tables ring: notify (doorbell triggers) or logical (publication pgpush); '
    'change it with pgpush.set_change_source(); pgpushd --change-source must match it';

-- The watched tables. An oid, not regclass, so that a dropped table does not
-- block DROP TABLE; rows of dropped tables are ignored and cleaned up.
CREATE TABLE IF NOT EXISTS pgpush.watched (
    relation  oid PRIMARY KEY,
    -- NULL: the default, pgpush.channel(). Only used by the doorbell.
    channel   text CHECK (channel <> '' AND octet_length(channel) < 64)
);
COMMENT ON TABLE pgpush.watched IS
    'the tables pgpush watches (pgpush.attach/detach); they ring through pgpush.change_source()';

CREATE OR REPLACE FUNCTION pgpush.change_source()
RETURNS text
LANGUAGE sql
STABLE
-- pgpushd reads it at startup and after every reconnection, with no
-- privilege on pgpush.settings.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.change_source FROM pgpush.settings s), 'notify')
$$;
COMMENT ON FUNCTION pgpush.change_source() IS
    'how watched tables ring: notify or logical; pgpushd --change-source must match it';

-- The doorbell triggers of a table (whatever they are called, made by
-- attach or by hand).
CREATE OR REPLACE FUNCTION pgpush.drop_doorbell(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trg name;
BEGIN
    FOR trg IN
        SELECT t.tgname FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = tbl AND t.tgfoid = 'pgpush.doorbell()'::regprocedure
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trg, tbl);
    END LOOP;
END
$$;
COMMENT ON FUNCTION pgpush.drop_doorbell(regclass) IS 'internal: drop the doorbell triggers of a table';

CREATE OR REPLACE FUNCTION pgpush.create_doorbell(tbl regclass, channel text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Drop-then-create keeps it idempotent and lets a second call change
    -- the channel. TRUNCATE fires no DELETE trigger, so it is listed on its
    -- own.
    PERFORM pgpush.drop_doorbell(tbl);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER pgpush_doorbell'
        ' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
        ' FOR EACH STATEMENT EXECUTE FUNCTION pgpush.doorbell(%s)',
        tbl, CASE WHEN channel IS NULL THEN '' ELSE pg_catalog.quote_literal(channel) END);
END
$$;
COMMENT ON FUNCTION pgpush.create_doorbell(regclass, text) IS 'internal: (re)create the doorbell trigger of a table';

-- Why a table cannot be published for UPDATE and DELETE (its writers'
-- UPDATE and DELETE statements would fail), or NULL when it can.
CREATE OR REPLACE FUNCTION pgpush.replica_identity_problem(tbl regclass)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN c.relreplident = 'n' THEN 'it has REPLICA IDENTITY NOTHING'
        WHEN c.relreplident = 'd' AND NOT EXISTS (
                 SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
             THEN 'it has no primary key and REPLICA IDENTITY DEFAULT'
        END
    FROM pg_catalog.pg_class c WHERE c.oid = tbl
$$;
COMMENT ON FUNCTION pgpush.replica_identity_problem(regclass) IS
    'internal: why a table has no replica identity usable for UPDATE and DELETE, or NULL';

-- Keeps the publication "pgpush" listing exactly the watched tables
-- (logical), or drops it (notify).
CREATE OR REPLACE FUNCTION pgpush.sync_publication()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tables text;
    member regclass;
BEGIN
    DELETE FROM pgpush.watched w
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = w.relation);
    IF pgpush.change_source() <> 'logical' THEN
        DROP PUBLICATION IF EXISTS pgpush;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = 'pgpush') THEN
        -- Via the root: a partitioned table's changes carry its own name,
        -- the one attach recorded.
        CREATE PUBLICATION pgpush WITH (publish_via_partition_root = true);
    END IF;
    SELECT pg_catalog.string_agg(w.relation::regclass::text, ', ' ORDER BY w.relation)
    INTO tables FROM pgpush.watched w;
    IF tables IS NOT NULL THEN
        EXECUTE 'ALTER PUBLICATION pgpush SET TABLE ' || tables;
    ELSE
        -- SET TABLE needs at least one table.
        FOR member IN
            SELECT r.prrelid::regclass FROM pg_catalog.pg_publication_rel r
            JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
            WHERE p.pubname = 'pgpush'
        LOOP
            EXECUTE pg_catalog.format('ALTER PUBLICATION pgpush DROP TABLE %s', member);
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION pgpush.sync_publication() IS
    'internal: the publication pgpush lists the watched tables (logical) or does not exist (notify)';

CREATE OR REPLACE FUNCTION pgpush.detach(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM pgpush.watched w WHERE w.relation = tbl;
    PERFORM pgpush.drop_doorbell(tbl);
    IF pgpush.change_source() = 'logical' THEN
        PERFORM pgpush.sync_publication();
    END IF;
END
$$;
COMMENT ON FUNCTION pgpush.detach(regclass) IS 'stop watching a table (no-op when not attached)';

CREATE OR REPLACE FUNCTION pgpush.attach(tbl regclass, channel text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    -- A view's statement triggers fire only through INSTEAD OF row
    -- triggers, and a view has no TRUNCATE: it would never ring.
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pgpush.attach: % is not a table', tbl;
    END IF;
    -- Same rule as pgpush.settings: a bad name must fail now, not inside
    -- every later write to the table.
    IF channel = '' OR pg_catalog.octet_length(channel) >= 64 THEN
        RAISE EXCEPTION 'pgpush.attach: invalid channel name "%" (1 to 63 bytes)', channel;
    END IF;
    IF pgpush.change_source() = 'logical' THEN
        problem := pgpush.replica_identity_problem(tbl);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'pgpush.attach: % cannot be published for logical replication: %', tbl, problem
                USING DETAIL = 'In a publication of UPDATE and DELETE, a table without a usable replica identity makes every UPDATE and DELETE on it fail.',
                      HINT = pg_catalog.format('Add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL (or USING INDEX); or use pgpush.set_change_source(''notify'').', tbl);
        END IF;
    END IF;

    INSERT INTO pgpush.watched AS w (relation, channel) VALUES (tbl, channel)
    ON CONFLICT (relation) DO UPDATE SET channel = excluded.channel;
    IF pgpush.change_source() = 'logical' THEN
        PERFORM pgpush.drop_doorbell(tbl);
        PERFORM pgpush.sync_publication();
    ELSE
        PERFORM pgpush.create_doorbell(tbl, channel);
    END IF;
END
$$;
COMMENT ON FUNCTION pgpush.attach(regclass, text) IS
    'watch a table: it rings after every INSERT/UPDATE/DELETE/TRUNCATE, through the doorbell '
    '(channel NULL = pgpush.channel()) or the publication, as pgpush.change_source() says';

-- The watched tables, and tables with a doorbell trigger made by hand.
CREATE OR REPLACE FUNCTION pgpush.attached()
RETURNS TABLE (relation regclass, channel text)
LANGUAGE sql
STABLE
-- pgpushd calls it (the names `reason` may carry) with no privilege on
-- pgpush.watched.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.relation::regclass, w.channel
    FROM pgpush.watched w
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = w.relation)
    UNION
    -- tgargs holds the trigger arguments, each terminated by a NUL byte.
    SELECT t.tgrelid::regclass,
           CASE WHEN t.tgnargs > 0 THEN
               pg_catalog.convert_from(
                   pg_catalog.substring(t.tgargs, 1, pg_catalog.position(t.tgargs, '\x00'::bytea) - 1),
                   pg_catalog.current_setting('server_encoding'))
           END
    FROM pg_catalog.pg_trigger t
    WHERE t.tgfoid = 'pgpush.doorbell()'::regprocedure
      AND NOT EXISTS (SELECT 1 FROM pgpush.watched w WHERE w.relation = t.tgrelid)
    ORDER BY 1
$$;
COMMENT ON FUNCTION pgpush.attached() IS
    'the watched tables (pgpush.attach); channel NULL means the default, pgpush.channel()';

-- Upgrade from a release without pgpush.watched: every table with a
-- doorbell is watched.
INSERT INTO pgpush.watched (relation, channel)
SELECT a.relation, a.channel FROM pgpush.attached() a
ON CONFLICT (relation) DO NOTHING;

CREATE OR REPLACE FUNCTION pgpush.set_change_source(source text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    problems text;
BEGIN
    IF source IS NULL OR source NOT IN ('notify', 'logical') THEN
        RAISE EXCEPTION 'pgpush.set_change_source: "%" is not notify or logical', source;
    END IF;
    -- Doorbells made by hand join the list, so nothing stops ringing.
    INSERT INTO pgpush.watched (relation, channel)
    SELECT a.relation, a.channel FROM pgpush.attached() a
    ON CONFLICT (relation) DO NOTHING;
    IF source = 'logical' THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', w2.relation::regclass,
                                     pgpush.replica_identity_problem(w2.relation::regclass)), ', ')
        INTO problems
        FROM pgpush.watched w2
        WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = w2.relation)
          AND pgpush.replica_identity_problem(w2.relation::regclass) IS NOT NULL;
        IF problems IS NOT NULL THEN
            RAISE EXCEPTION 'pgpush.set_change_source: these tables cannot be published for logical replication: %', problems
                USING HINT = 'Add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX), or detach them.';
        END IF;
    END IF;
    UPDATE pgpush.settings SET change_source = source;
    IF NOT FOUND THEN
        INSERT INTO pgpush.settings (change_source) VALUES (source);
    END IF;
    PERFORM pgpush.sync_publication();
    IF source = 'logical' THEN
        -- No trigger at all: a write-hot table takes no NOTIFY lock.
        FOR w IN SELECT t.tgrelid::regclass AS tbl FROM pg_catalog.pg_trigger t
                 WHERE t.tgfoid = 'pgpush.doorbell()'::regprocedure LOOP
            PERFORM pgpush.drop_doorbell(w.tbl);
        END LOOP;
    ELSE
        FOR w IN SELECT x.relation::regclass AS tbl, x.channel FROM pgpush.watched x
                 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = x.relation) LOOP
            PERFORM pgpush.create_doorbell(w.tbl, w.channel);
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION pgpush.set_change_source(text) IS
    'how watched tables ring: notify (doorbell triggers) or logical (publication pgpush, no trigger); '
    'pgpushd --change-source must match';

-- ---------------------------------------------------------------- versions --

-- The version of every document pgpushd publishes: drawn with nextval() on
-- pgpushd's listener connection (a read-write session on the primary), so
-- it never goes backwards across restarts, clock steps and several daemons
-- on one database. pgpushd's role needs USAGE on it. Created starting at the
-- current Unix time in ms, so versions stay above those of the releases that
-- took them from the clock.
DO $$
BEGIN
    IF pg_catalog.to_regclass('pgpush.version_seq') IS NULL THEN
        CREATE SEQUENCE pgpush.version_seq AS bigint;
        PERFORM pg_catalog.setval('pgpush.version_seq',
            (pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000)::bigint);
    END IF;
END
$$;
COMMENT ON SEQUENCE pgpush.version_seq IS
    'versions of the documents pgpushd publishes (nextval on its listener connection)';

-- --------------------------------------------------------------- dashboard --

-- The document of docs/protocol.md. "Today" and day boundaries follow the
-- session's TimeZone: set it for pgpushd's role (ALTER ROLE ... SET
-- timezone) to choose the business day.
--
-- Cost: the last 30 days of sales are read once (an index range scan once
-- the history is long, a sequential scan while the window is a large part
-- of the table) and aggregated in the same pass by day and by product; the
-- recent sales are a ten-row backward index scan; stock and products are
-- read once per list. Never a scan of all sales per product.
--
-- PL/pgSQL rather than SQL for two reasons: the query plan is cached for the
-- session (pgpushd calls this on one connection, over and over; planning a
-- SQL function's body costs as much as running it), and the window bounds
-- are computed once, not per row, so the planner sees a narrow range scan.
CREATE OR REPLACE FUNCTION pgpush.dashboard()
RETURNS json
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    today         date        := current_date;
    -- The 30 days ending today, both ends at local midnight. The upper
    -- bound keeps future-dated rows out, so the summary always equals the
    -- sum of salesByDay.
    window_start  timestamptz := (today - 29)::timestamptz;
    window_end    timestamptz := (today + 1)::timestamptz;
    -- The customer columns appear only for a role that may read them. The
    -- privilege is current_user's: the role pgpushd switched to with SET
    -- LOCAL ROLE for this audience (this function must not be SECURITY
    -- DEFINER, or it would be its owner's), or pgpushd's own role without
    -- authentication.
    may_name      boolean     := pg_catalog.has_column_privilege('public.sales', 'customer_name', 'SELECT');
    may_email     boolean     := pg_catalog.has_column_privilege('public.sales', 'customer_email', 'SELECT');
    recent        json;
BEGIN
    -- A statement that names a column its role may not read fails as a
    -- whole, even in a CASE branch never taken: so each set of columns has
    -- its own statement, and only the one the role may run is run. Each is
    -- the ten newest sales (LIMIT before the join: product_id is NOT NULL
    -- and a foreign key, so the join drops no row and the backward index
    -- scan stops after ten).
    IF may_name AND may_email THEN
        recent := (
            SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                       'id',            r.id,
                       'productId',     r.product_id,
                       'sku',           p.sku,
                       'product',       p.name,
                       'quantity',      r.quantity,
                       'amount',        pg_catalog.round(r.quantity * r.unit_price, 2),
                       'customerName',  r.customer_name,
                       'customerEmail', r.customer_email,
                       'soldAt',        pg_catalog.to_char(r.sold_at, 'YYYY-MM-DD"T"HH24:MI:SS.MSTZH:TZM'))
                     ORDER BY r.sold_at DESC, r.id DESC), '[]')
            FROM (SELECT s.id, s.product_id, s.quantity, s.unit_price, s.customer_name, s.customer_email, s.sold_at
                  FROM public.sales s ORDER BY s.sold_at DESC, s.id DESC LIMIT 10) r
            JOIN public.products p ON p.id = r.product_id);
    ELSIF may_name THEN
        recent := (
            SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                       'id',            r.id,
                       'productId',     r.product_id,
                       'sku',           p.sku,
                       'product',       p.name,
                       'quantity',      r.quantity,
                       'amount',        pg_catalog.round(r.quantity * r.unit_price, 2),
                       'customerName',  r.customer_name,
                       'soldAt',        pg_catalog.to_char(r.sold_at, 'YYYY-MM-DD"T"HH24:MI:SS.MSTZH:TZM'))
                     ORDER BY r.sold_at DESC, r.id DESC), '[]')
            FROM (SELECT s.id, s.product_id, s.quantity, s.unit_price, s.customer_name, s.sold_at
                  FROM public.sales s ORDER BY s.sold_at DESC, s.id DESC LIMIT 10) r
            JOIN public.products p ON p.id = r.product_id);
    ELSIF may_email THEN
        recent := (
            SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                       'id',            r.id,
                       'productId',     r.product_id,
                       'sku',           p.sku,
                       'product',       p.name,
                       'quantity',      r.quantity,
                       'amount',        pg_catalog.round(r.quantity * r.unit_price, 2),
                       'customerEmail', r.customer_email,
                       'soldAt',        pg_catalog.to_char(r.sold_at, 'YYYY-MM-DD"T"HH24:MI:SS.MSTZH:TZM'))
                     ORDER BY r.sold_at DESC, r.id DESC), '[]')
            FROM (SELECT s.id, s.product_id, s.quantity, s.unit_price, s.customer_email, s.sold_at
                  FROM public.sales s ORDER BY s.sold_at DESC, s.id DESC LIMIT 10) r
            JOIN public.products p ON p.id = r.product_id);
    ELSE
        recent := (
            SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                       'id',            r.id,
                       'productId',     r.product_id,
                       'sku',           p.sku,
                       'product',       p.name,
                       'quantity',      r.quantity,
                       'amount',        pg_catalog.round(r.quantity * r.unit_price, 2),
                       'soldAt',        pg_catalog.to_char(r.sold_at, 'YYYY-MM-DD"T"HH24:MI:SS.MSTZH:TZM'))
                     ORDER BY r.sold_at DESC, r.id DESC), '[]')
            FROM (SELECT s.id, s.product_id, s.quantity, s.unit_price, s.sold_at
                  FROM public.sales s ORDER BY s.sold_at DESC, s.id DESC LIMIT 10) r
            JOIN public.products p ON p.id = r.product_id);
    END IF;

    RETURN (
WITH
-- One pass over the window, grouped two ways at once: per day and per
-- product. per_day tells the two kinds of rows apart.
agg AS (
    SELECT s.sold_at::date                 AS day,
           s.product_id,
           pg_catalog.sum(s.quantity * s.unit_price)  AS revenue,
           pg_catalog.count(*)                        AS sales,
           pg_catalog.sum(s.quantity)                 AS units,
           grouping(s.product_id) = 1      AS per_day
    FROM public.sales s
    WHERE s.sold_at >= window_start
      AND s.sold_at <  window_end
    GROUP BY GROUPING SETS ((s.sold_at::date), (s.product_id))
),
by_day AS (
    SELECT a.day, a.revenue, a.sales, a.units FROM agg a WHERE a.per_day
),
by_product AS (
    SELECT a.product_id, a.units FROM agg a WHERE NOT a.per_day
),
stocked AS (
    SELECT p.id, p.sku, p.name, st.quantity, st.reorder_level,
           -- Rounded first, and then used as rounded, so that a reader of the
           -- document can recompute the prediction from the fields it shows.
           pg_catalog.round(coalesce(bp.units, 0) / 30.0, 2) AS avg_daily
    FROM public.stock st
    JOIN public.products p ON p.id = st.product_id
    LEFT JOIN by_product bp ON bp.product_id = st.product_id
),
predicted AS (
    SELECT k.*,
           -- Stock at or below zero has already run out: 0 days, not a
           -- negative count.
           CASE WHEN k.avg_daily > 0
                THEN pg_catalog.round(greatest(k.quantity, 0) / k.avg_daily, 1)
           END AS days_left
    FROM stocked k
)
SELECT pg_catalog.json_build_object(
    'summary', (
        SELECT pg_catalog.json_build_object(
            'revenueToday',     pg_catalog.round(coalesce(pg_catalog.sum(d.revenue) FILTER (WHERE d.day = today), 0), 2),
            'salesToday',       coalesce(pg_catalog.sum(d.sales) FILTER (WHERE d.day = today), 0),
            'revenue30d',       pg_catalog.round(coalesce(pg_catalog.sum(d.revenue), 0), 2),
            'sales30d',         coalesce(pg_catalog.sum(d.sales), 0),
            'avgOrderValue30d', CASE WHEN pg_catalog.sum(d.sales) > 0
                                     THEN pg_catalog.round(pg_catalog.sum(d.revenue) / pg_catalog.sum(d.sales), 2)
                                     ELSE 0.00 END,
            'lowStockCount',    (SELECT pg_catalog.count(*) FROM public.stock st
                                 WHERE st.quantity <= st.reorder_level))
        FROM by_day d),

    'recentSales', recent,

    'salesByDay', (
        SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                   'day',     cal.day,
                   'revenue', pg_catalog.round(coalesce(d.revenue, 0), 2),
                   'sales',   coalesce(d.sales, 0),
                   'units',   coalesce(d.units, 0))
                 ORDER BY cal.day)
        FROM (SELECT today - i AS day FROM pg_catalog.generate_series(0, 29) i) cal
        LEFT JOIN by_day d ON d.day = cal.day),

    'stockPredictions', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                   'productId',         x.id,
                   'sku',               x.sku,
                   'product',           x.name,
                   'stock',             x.quantity,
                   'reorderLevel',      x.reorder_level,
                   'avgDailyUnits',     x.avg_daily,
                   'daysUntilStockout', x.days_left,
                   'stockoutDate',      today + pg_catalog.floor(x.days_left)::integer,
                   'forecast', (
                       SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                  'day',   today + n,
                                  'stock', pg_catalog.round(greatest(0, x.quantity - x.avg_daily * n), 2))
                                ORDER BY n)
                       FROM pg_catalog.generate_series(1, 14) n))
                 ORDER BY x.days_left NULLS LAST, x.id), '[]')
        FROM predicted x),

    'lowStock', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                   'productId',    p.id,
                   'sku',          p.sku,
                   'product',      p.name,
                   'stock',        st.quantity,
                   'reorderLevel', st.reorder_level)
                 ORDER BY st.quantity, p.id), '[]')
        FROM public.stock st
        JOIN public.products p ON p.id = st.product_id
        WHERE st.quantity <= st.reorder_level)
)
    );
END
$$;
COMMENT ON FUNCTION pgpush.dashboard() IS
    'the dashboard document pgpushd pushes (docs/protocol.md), customer fields only for roles that may read them; replace it to show something else';

-- ================================================================ registry --
-- Named dashboards (issue 9). This section is the registry's alone: the
-- dashboards a DBA registers, each served by pgpushd on the Socket.IO
-- namespace '/<name>' (the main namespace '/' keeps pgpush.dashboard() or
-- --query). pgpushd reads pgpush.registry() at startup and again on the
-- notification ':registry' that every change sends, so a change needs no
-- restart. sql/README.md ("Named dashboards") documents it.

CREATE TABLE IF NOT EXISTS pgpush.dashboards (
    -- The Socket.IO namespace is '/' || name: lower-case letters, digits,
    -- '_' and '-', nothing that needs escaping in a URL.
    name             text PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,63}$'),
    -- The document: a function without arguments returning json or jsonb,
    -- called as SELECT <fn>() under each audience's role.
    fn               regprocedure NOT NULL,
    -- The attached tables whose doorbell recomputes it.
    tables           regclass[] NOT NULL CHECK (pg_catalog.cardinality(tables) > 0),
    -- The token claims (besides the role) that tell its audiences apart and
    -- that the function may read from request.jwt.claims. Sorted, distinct.
    audience_claims  text[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pgpush.dashboards IS
    'named dashboards served by pgpushd on namespace /<name>; change it with pgpush.register_dashboard() and pgpush.unregister_dashboard()';

-- Any change to the registry, whatever makes it (the functions below or a
-- DBA's UPDATE), tells pgpushd to read it again. Within one transaction the
-- identical notifications fold into one.
CREATE OR REPLACE FUNCTION pgpush.registry_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify(pgpush.channel(), ':registry');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION pgpush.registry_changed() IS
    'statement trigger on pgpush.dashboards: NOTIFY <channel>, '':registry''';

DROP TRIGGER IF EXISTS pgpush_registry_changed ON pgpush.dashboards;
CREATE TRIGGER pgpush_registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgpush.dashboards
    FOR EACH STATEMENT EXECUTE FUNCTION pgpush.registry_changed();

CREATE OR REPLACE FUNCTION pgpush.register_dashboard(
    name text, fn regprocedure, tables regclass[], audience_claims text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p        record;
    tbl      regclass;
    ch       text;
    claim    text;
    claims   text[];
BEGIN
    IF name IS NULL OR name !~ '^[a-z0-9_-]{1,63}$' THEN
        RAISE EXCEPTION 'pgpush.register_dashboard: invalid dashboard name "%"', name
            USING HINT = 'It becomes the Socket.IO namespace /<name>: 1 to 63 of a-z, 0-9, _ and -.';
    END IF;

    SELECT pr.oid, pr.pronargs, pr.prokind, pr.proretset, pr.prosecdef,
           pr.prorettype::regtype::text AS rettype
    INTO p FROM pg_catalog.pg_proc pr WHERE pr.oid = fn;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgpush.register_dashboard: function % does not exist', fn;
    END IF;
    IF p.prokind <> 'f' OR p.pronargs <> 0 OR p.proretset OR p.rettype NOT IN ('json', 'jsonb') THEN
        RAISE EXCEPTION 'pgpush.register_dashboard: % must be a function without arguments returning one json or jsonb value', fn
            USING HINT = 'pgpushd calls SELECT <function>(); the function reads the audience''s claims from request.jwt.claims.';
    END IF;
    -- SECURITY DEFINER would run it as its owner: the audience's role, its
    -- column privileges and its row-level security would not apply.
    IF p.prosecdef THEN
        RAISE EXCEPTION 'pgpush.register_dashboard: % is SECURITY DEFINER', fn
            USING HINT = 'It must run as the audience''s role (SET LOCAL ROLE), so that PostgreSQL''s privileges and policies decide what it sees.';
    END IF;

    IF tables IS NULL OR pg_catalog.cardinality(tables) = 0 THEN
        RAISE EXCEPTION 'pgpush.register_dashboard: % needs at least one table', name
            USING HINT = 'The tables whose changes recompute it; attach them first with pgpush.attach().';
    END IF;
    FOREACH tbl IN ARRAY tables LOOP
        IF tbl IS NULL THEN
            RAISE EXCEPTION 'pgpush.register_dashboard: NULL in the tables of %', name;
        END IF;
        SELECT a.channel INTO ch FROM pgpush.attached() a WHERE a.relation = tbl;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pgpush.register_dashboard: table % is not attached', tbl
                USING HINT = pg_catalog.format('SELECT pgpush.attach(%L) first.', tbl::text);
        END IF;
        IF ch IS NOT NULL AND ch IS DISTINCT FROM pgpush.channel() THEN
            RAISE WARNING 'pgpush.register_dashboard: % rings channel "%", not pgpushd''s "%"', tbl, ch, pgpush.channel();
        END IF;
    END LOOP;

    -- Claim names as a JWT spells them (top-level members): printable
    -- ASCII, no quote or backslash, at most 128 bytes; at most 16 of them.
    IF audience_claims IS NULL THEN
        audience_claims := '{}';
    END IF;
    FOREACH claim IN ARRAY audience_claims LOOP
        IF claim IS NULL OR claim !~ '^[[:graph:]]{1,128}$' OR claim ~ '["\\]' OR claim !~ '^[ -~]*$' THEN
            RAISE EXCEPTION 'pgpush.register_dashboard: invalid claim name "%"', claim
                USING HINT = 'A top-level claim of the token: 1 to 128 printable ASCII characters, no quote, backslash or space.';
        END IF;
    END LOOP;
    SELECT coalesce(pg_catalog.array_agg(DISTINCT c ORDER BY c), '{}') INTO claims
    FROM pg_catalog.unnest(audience_claims) c;
    IF pg_catalog.cardinality(claims) > 16 THEN
        RAISE EXCEPTION 'pgpush.register_dashboard: % declares % claims; at most 16', name, pg_catalog.cardinality(claims);
    END IF;

    INSERT INTO pgpush.dashboards AS d (name, fn, tables, audience_claims)
    VALUES (register_dashboard.name, register_dashboard.fn,
            (SELECT pg_catalog.array_agg(DISTINCT t ORDER BY t) FROM pg_catalog.unnest(register_dashboard.tables) t),
            claims)
    ON CONFLICT ON CONSTRAINT dashboards_pkey DO UPDATE
        SET fn = excluded.fn, tables = excluded.tables, audience_claims = excluded.audience_claims;

    PERFORM pg_catalog.pg_notify(pgpush.channel(), ':registry');
END
$$;
COMMENT ON FUNCTION pgpush.register_dashboard(text, regprocedure, regclass[], text[]) IS
    'serve fn() on namespace /<name>, recomputed when one of tables changes, one document per role and declared claims; re-registering replaces';

CREATE OR REPLACE FUNCTION pgpush.unregister_dashboard(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM pgpush.dashboards d WHERE d.name = unregister_dashboard.name;
    PERFORM pg_catalog.pg_notify(pgpush.channel(), ':registry');
END
$$;
COMMENT ON FUNCTION pgpush.unregister_dashboard(text) IS
    'stop serving the dashboard named name (no-op when there is none)';

-- What pgpushd reads. SECURITY DEFINER so that its role needs EXECUTE on
-- this function only, not SELECT on pgpush.dashboards; EXECUTE is revoked
-- from PUBLIC below and granted by sql/grant.sql. A dashboard whose
-- function was dropped is left out (its namespace stops existing), and so
-- is a dropped table.
CREATE OR REPLACE FUNCTION pgpush.registry()
RETURNS TABLE (name text, fn_sql text, tables text[], audience_claims text[])
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.name,
           -- Ready to call: SELECT <fn_sql>()
           pg_catalog.format('%I.%I', n.nspname, p.proname),
           -- Bare names, as the doorbell's payload (TG_TABLE_NAME) gives them.
           coalesce((SELECT pg_catalog.array_agg(DISTINCT c.relname::text ORDER BY c.relname::text)
                     FROM pg_catalog.unnest(d.tables) t
                     JOIN pg_catalog.pg_class c ON c.oid = t), '{}'),
           d.audience_claims
    FROM pgpush.dashboards d
    JOIN pg_catalog.pg_proc p ON p.oid = d.fn
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    ORDER BY d.name
$$;
COMMENT ON FUNCTION pgpush.registry() IS
    'the named dashboards as pgpushd reads them: name, function to call, bare table names, audience claims';

REVOKE ALL ON FUNCTION pgpush.registry() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgpush.register_dashboard(text, regprocedure, regclass[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgpush.unregister_dashboard(text) FROM PUBLIC;
-- ============================================================ end registry --

-- ================================================================ cluster --

-- The pgpushd instances on one database with the same --channel and
-- --query form one cluster: the one that holds the advisory lock
-- (1885828213, <32 bits of a hash of both>) on its listener connection is
-- the leader. The default dashboard is named ':<the hash in hex>' here. Only the leader runs dashboard queries;
-- it stores each new document here and notifies '<channel>' with
-- ':doc,<id>,<version>'; the followers fetch the row by id and send it to
-- their own clients under the leader's version. docs/design.md ("Cluster").
--
-- UNLOGGED: every row is recomputable (the leader recomputes everything
-- when it takes over), a change writes no WAL, and replicas need none of it
-- (followers read from the primary, on their listener connection). After a
-- crash the table is empty, and the restarted leader recomputes it.
CREATE UNLOGGED TABLE IF NOT EXISTS pgpush.feed_doc (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dashboard     text NOT NULL,            -- ':<scope>' for the default one
    role          text NOT NULL,            -- '' for pgpushd's own role
    key           text NOT NULL,            -- the audience's claims; '' without tokens
    version       bigint NOT NULL,          -- 0: a follower asked, nothing stored yet
    generated_ms  bigint NOT NULL DEFAULT 0,
    reason        text NOT NULL DEFAULT '',
    doc           text,                     -- the dashboard's JSON object; NULL with version 0
    stored_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- One row per audience. The key (claims as JSON) may be longer than a
-- btree entry may: the index holds its md5.
CREATE UNIQUE INDEX IF NOT EXISTS feed_doc_audience
    ON pgpush.feed_doc (dashboard, role, pg_catalog.md5(key));
COMMENT ON TABLE pgpush.feed_doc IS
    'pgpushd cluster: the current document of each audience, stored by the leader, fetched by followers';
-- The leader's error state for the audience (the clients' dashboardDataError
-- payload, never PostgreSQL's text), NULL when its last recompute worked:
-- set by pgpush.feed_error, cleared by the next pgpush.feed_store.
ALTER TABLE pgpush.feed_doc ADD COLUMN IF NOT EXISTS error text;
-- The RFC 6902 patch from version patch_from (the row's previous version)
-- to this one, of the DBA's document: a follower holding patch_from fetches
-- it instead of the document. NULL: none (the first store, a patch not
-- smaller than the document, or a store that did not follow patch_from).
ALTER TABLE pgpush.feed_doc ADD COLUMN IF NOT EXISTS patch_from bigint;
ALTER TABLE pgpush.feed_doc ADD COLUMN IF NOT EXISTS patch text;

-- The audiences each instance has clients for, under the pid of its
-- listener's backend: rows of a backend that is gone are pruned by the
-- leader (pgpush.feed_demand_read). UNLOGGED for the same reasons: every
-- instance registers again after its listener reconnects.
CREATE UNLOGGED TABLE IF NOT EXISTS pgpush.feed_demand (
    pid        integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
    dashboard  text NOT NULL,
    role       text NOT NULL,
    key        text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS feed_demand_audience
    ON pgpush.feed_demand (pid, dashboard, role, pg_catalog.md5(key));
COMMENT ON TABLE pgpush.feed_demand IS
    'pgpushd cluster: the audiences each instance serves, by the pid of its listener backend';

REVOKE ALL ON pgpush.feed_doc, pgpush.feed_demand FROM PUBLIC;

-- The leader: stores a new document, versions only growing, and notifies
-- ':doc,<id>,<version>' in the same transaction (the statement's). A
-- document older than the stored one stores and notifies nothing; the same
-- version is announced again (the leader does that when another instance
-- starts asking for an audience it already computes). Returns the row's
-- id, or NULL when nothing was stored. p_patch turns the document of
-- version p_patch_from into p_doc; it is kept only when the row held
-- exactly p_patch_from (a re-announcement keeps the row's patch).
CREATE OR REPLACE FUNCTION pgpush.feed_store(
    p_dashboard text, p_role text, p_key text, p_version bigint, p_generated_ms bigint,
    p_reason text, p_doc text, p_channel text, p_patch_from bigint, p_patch text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    INSERT INTO pgpush.feed_doc AS f (dashboard, role, key, version, generated_ms, reason, doc)
    VALUES (p_dashboard, p_role, p_key, p_version, p_generated_ms, p_reason, p_doc)
    ON CONFLICT (dashboard, role, (pg_catalog.md5(key))) DO UPDATE
        SET version = EXCLUDED.version, generated_ms = EXCLUDED.generated_ms,
            reason = EXCLUDED.reason, doc = EXCLUDED.doc, stored_at = pg_catalog.now(),
            error = NULL,
            patch_from = CASE WHEN f.version = EXCLUDED.version THEN f.patch_from
                              WHEN f.version = p_patch_from AND p_patch IS NOT NULL THEN p_patch_from END,
            patch = CASE WHEN f.version = EXCLUDED.version THEN f.patch
                         WHEN f.version = p_patch_from THEN p_patch END
        WHERE f.version <= EXCLUDED.version
    RETURNING f.id, f.version INTO r;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_catalog.pg_notify(p_channel, ':doc,' || r.id || ',' || r.version);
    RETURN r.id;
END
$$;

-- The same without a patch (pgpushd before patches were stored).
CREATE OR REPLACE FUNCTION pgpush.feed_store(
    p_dashboard text, p_role text, p_key text, p_version bigint, p_generated_ms bigint,
    p_reason text, p_doc text, p_channel text)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pgpush.feed_store(p_dashboard, p_role, p_key, p_version, p_generated_ms, p_reason,
                             p_doc, p_channel, NULL, NULL)
$$;

-- The leader: the audience's recompute failed. Keeps the document and
-- stores the error its clients got (p_error: dashboardDataError's JSON
-- payload), notifying ':err,<id>': followers fetch the row and show it to
-- their clients too. The next pgpush.feed_store clears it.
CREATE OR REPLACE FUNCTION pgpush.feed_error(
    p_dashboard text, p_role text, p_key text, p_error text, p_channel text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r bigint;
BEGIN
    INSERT INTO pgpush.feed_doc AS f (dashboard, role, key, version, error)
    VALUES (p_dashboard, p_role, p_key, 0, p_error)
    ON CONFLICT (dashboard, role, (pg_catalog.md5(key))) DO UPDATE
        SET error = EXCLUDED.error, stored_at = pg_catalog.now()
    RETURNING f.id INTO r;
    PERFORM pg_catalog.pg_notify(p_channel, ':err,' || r);
    RETURN r;
END
$$;

-- A follower's first fetch of an audience: makes sure its row exists (so
-- its id is known before the leader stores anything: the notification names
-- the id only) and returns it, with the document when newer than p_since
-- and current: some other live instance has the audience (its clients or
-- its grace period), so a leader computes it. A document nobody has had
-- since (the leader dropped the audience, or died) may be old: the caller
-- gets none, registers the audience, and the leader computes it afresh.
CREATE OR REPLACE FUNCTION pgpush.feed_fetch(
    p_dashboard text, p_role text, p_key text, p_since bigint)
RETURNS TABLE (id bigint, version bigint, generated_ms bigint, reason text, doc text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pgpush.feed_doc AS f (dashboard, role, key, version)
    VALUES (p_dashboard, p_role, p_key, 0)
    ON CONFLICT DO NOTHING;
    RETURN QUERY
        SELECT f.id, f.version, f.generated_ms, f.reason,
               CASE WHEN f.version > p_since AND EXISTS (
                   SELECT 1 FROM pgpush.feed_demand d
                   JOIN pg_catalog.pg_stat_activity a ON a.pid = d.pid
                   WHERE d.pid <> pg_catalog.pg_backend_pid()
                     AND (d.dashboard, d.role, d.key) = (f.dashboard, f.role, f.key))
               THEN f.doc END
        FROM pgpush.feed_doc f
        WHERE f.dashboard = p_dashboard AND f.role = p_role
          AND pg_catalog.md5(f.key) = pg_catalog.md5(p_key) AND f.key = p_key;
END
$$;

-- Every instance: replaces the audiences registered under its listener's
-- backend with p_feeds, a JSON array of [dashboard, role, key], and
-- notifies ':demand' when that changed something.
CREATE OR REPLACE FUNCTION pgpush.feed_demand_set(p_feeds json, p_channel text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed bigint;
BEGIN
    WITH want AS (
        SELECT DISTINCT e->>0 AS dashboard, e->>1 AS role, e->>2 AS key
        FROM pg_catalog.json_array_elements(p_feeds) e
    ), gone AS (
        DELETE FROM pgpush.feed_demand d
        WHERE d.pid = pg_catalog.pg_backend_pid()
          AND NOT EXISTS (SELECT 1 FROM want w
                          WHERE (w.dashboard, w.role, w.key) = (d.dashboard, d.role, d.key))
        RETURNING 1
    ), added AS (
        INSERT INTO pgpush.feed_demand (dashboard, role, key)
        SELECT w.dashboard, w.role, w.key FROM want w
        WHERE w.dashboard IS NOT NULL AND w.role IS NOT NULL AND w.key IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT pg_catalog.count(*) FROM gone) + (SELECT pg_catalog.count(*) FROM added)
    INTO changed;
    IF changed > 0 THEN
        PERFORM pg_catalog.pg_notify(p_channel, ':demand');
    END IF;
END
$$;

-- The leader: the audiences other instances serve. Rows of backends that
-- are gone (an instance killed, its connection lost) are deleted first, and
-- so are the documents nobody has wanted for an hour.
CREATE OR REPLACE FUNCTION pgpush.feed_demand_read()
RETURNS TABLE (dashboard text, role text, key text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM pgpush.feed_demand d
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = d.pid);
    DELETE FROM pgpush.feed_doc f
    WHERE f.stored_at < pg_catalog.now() - interval '1 hour'
      AND NOT EXISTS (SELECT 1 FROM pgpush.feed_demand d
                      WHERE (d.dashboard, d.role, d.key) = (f.dashboard, f.role, f.key));
    RETURN QUERY
        SELECT DISTINCT d.dashboard, d.role, d.key FROM pgpush.feed_demand d
        WHERE d.pid <> pg_catalog.pg_backend_pid();
END
$$;

REVOKE ALL ON FUNCTION pgpush.feed_store(text, text, text, bigint, bigint, text, text, text),
    pgpush.feed_store(text, text, text, bigint, bigint, text, text, text, bigint, text),
    pgpush.feed_error(text, text, text, text, text),
    pgpush.feed_fetch(text, text, text, bigint), pgpush.feed_demand_set(json, text),
    pgpush.feed_demand_read() FROM PUBLIC;
-- ============================================================= end cluster --

-- ------------------------------------------------------ first-install only --

-- The settings row doubles as the "already installed" mark: only the run
-- that creates it attaches the reference tables, so a rerun keeps a table
-- the DBA detached detached.
DO $$
DECLARE
    tbl text;
BEGIN
    INSERT INTO pgpush.settings DEFAULT VALUES ON CONFLICT DO NOTHING;
    IF FOUND THEN
        FOREACH tbl IN ARRAY ARRAY['public.sales', 'public.stock'] LOOP
            IF pg_catalog.to_regclass(tbl) IS NULL THEN
                RAISE WARNING 'pgpush: % does not exist, so it was not attached', tbl
                    USING HINT = 'Load sql/schema.sql before install.sql, or attach your own tables with pgpush.attach().';
            ELSE
                PERFORM pgpush.attach(tbl::regclass);
            END IF;
        END LOOP;
    END IF;
END
$$;

-- ------------------------------------------------------------------ grants --

-- Writers need nothing (pgpush.doorbell() is SECURITY DEFINER). pgpushd's
-- role needs the grants of sql/grant.sql and nothing more (sql/README.md).
-- LISTEN needs no privilege.

COMMIT;
