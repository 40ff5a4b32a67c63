-- pgpush: the doorbell triggers and the reference dashboard.
--
-- Everything pgpush owns lives in the schema "pgpush"; sql/uninstall.sql
-- removes it. Load sql/schema.sql first: the first install attaches the
-- doorbell to public.sales and public.stock, and the reference
-- pgpush.dashboard() reads them (with tables of your own, attach them and
-- point pgpushd --query at your own dashboard; see sql/README.md).
--
-- Idempotent: rerun it to upgrade. The channel setting and the set of
-- attached tables survive a rerun.
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
BEGIN
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

    'recentSales', (
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
        -- LIMIT before the join: product_id is NOT NULL and a foreign key,
        -- so the join drops no row and the index scan stops after ten.
        FROM (SELECT s.* FROM public.sales s
              ORDER BY s.sold_at DESC, s.id DESC
              LIMIT 10) r
        JOIN public.products p ON p.id = r.product_id),

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
    'the dashboard document pgpushd pushes (docs/protocol.md); replace it to show something else';

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
