-- Demo data for the reference dashboard: a small coffee-and-kitchen shop.
--
-- 36 products, their stock, and about 90 days of sales ending now (roughly
-- 100-200 sales a day, busier on Fridays and Saturdays, slowly growing).
-- Needs sql/schema.sql; load install.sql first if you want the doorbell to
-- ring (once per table: everything here is one transaction).
--   psql -v ON_ERROR_STOP=1 -d yourdb -f sql/demo-data.sql
--
-- Rerunnable: it truncates-and-reloads only the demo rows. The demo products
-- are the SKUs listed below: they are upserted (so their ids stay the same),
-- all sales of those products are deleted and regenerated relative to now(),
-- and their stock rows are rewritten. Other products and their sales are not
-- touched. setseed() makes reloads repeatable: the same random draws every
-- time, placed on the 90 days ending today, so a reload on the same day
-- gives the same sales (today's up to the current time) and stock levels,
-- and a reload another day the same kind of shop. Where sql/demo-roles.sql
-- added sales.store_id, the reloaded sales are spread over stores 1 to 3
-- (1 + id % 3), as demo-roles.sql spreads the sales it finds.

BEGIN;

-- ------------------------------------------------------------- catalogue --

-- weight:     relative popularity (share of sales).
-- cover_days: how many days of the last 30 days' average demand the stock
--             covers after loading, so predictions run from "out of stock"
--             to months, and the short ones land in lowStock.
-- first_ago:  sold only on days at least this many days ago (seasonal item
--             that stopped selling: no prediction).
-- fixed_stock: stock for items whose demand is zero.
CREATE TEMP TABLE demo_product (
    sku          text PRIMARY KEY,
    name         text NOT NULL,
    unit_price   numeric(12,2) NOT NULL,
    weight       numeric NOT NULL,
    cover_days   numeric NOT NULL,
    first_ago    integer NOT NULL DEFAULT 0,
    fixed_stock  integer
) ON COMMIT DROP;

INSERT INTO demo_product (sku, name, unit_price, weight, cover_days, first_ago, fixed_stock) VALUES
    ('BEAN-ESP-250', 'Espresso Beans 250 g',         9.90, 10.0,   6, 0, NULL),
    ('BEAN-ETH-250', 'Ethiopia Yirgacheffe 250 g',  12.50,  7.0,  21, 0, NULL),
    ('BEAN-COL-1K',  'Colombia Huila 1 kg',         34.00,  3.0,  45, 0, NULL),
    ('BEAN-DEC-250', 'Decaf House Blend 250 g',     10.50,  3.0,  90, 0, NULL),
    ('TEA-BRK-100',  'Breakfast Tea, 100 bags',      6.80,  6.0,  14, 0, NULL),
    ('TEA-SEN-100',  'Sencha Green Tea 100 g',       8.40,  4.0,  35, 0, NULL),
    ('TEA-CHA-050',  'Chamomile Tea, 50 bags',       5.20,  3.0,  60, 0, NULL),
    ('MILK-OAT-1L',  'Oat Milk 1 L',                 2.60,  9.0,   3, 0, NULL),
    ('MILK-ALM-1L',  'Almond Milk 1 L',              2.90,  4.0,  11, 0, NULL),
    ('MUG-BLU-350',  'Blue Mug 350 ml',             12.50,  5.0,  25, 0, NULL),
    ('MUG-WHT-350',  'White Mug 350 ml',            11.00,  5.0,  40, 0, NULL),
    ('TUM-STL-470',  'Steel Travel Tumbler 470 ml', 24.90,  3.0,  17, 0, NULL),
    ('CUP-GLS-200',  'Double-Wall Glass Cups, pair',14.00,  2.0,  75, 0, NULL),
    ('CUP-ESP-004',  'Espresso Cup Set of 4',       22.00,  1.5, 120, 0, NULL),
    ('BREW-DRP-V60', 'Pour-Over Dripper',           21.00,  2.0,  30, 0, NULL),
    ('BREW-FLT-100', 'Paper Filters, 100',           4.50,  7.0,   0, 0, NULL),
    ('BREW-FRP-1L',  'French Press 1 L',            34.90,  1.2,  50, 0, NULL),
    ('BREW-MOK-006', 'Moka Pot, 6 cups',            39.00,  1.0,  65, 0, NULL),
    ('BREW-CLD-1L',  'Cold Brew Bottle 1 L',        27.50,  2.0,   0, 40,  18),
    ('TOOL-FRO-001', 'Milk Frother',                19.90,  1.5,   9, 0, NULL),
    ('TOOL-GRD-BUR', 'Burr Grinder',                89.00,  0.6, 150, 0, NULL),
    ('TOOL-SCL-DIG', 'Digital Coffee Scale',        29.00,  0.8,  80, 0, NULL),
    ('TOOL-KTL-GNK', 'Gooseneck Kettle',            59.00,  0.7, 100, 0, NULL),
    ('TOOL-TMP-058', 'Tamper 58 mm',                24.00,  0.5, 180, 0, NULL),
    ('CARE-TAB-030', 'Cleaning Tablets, 30',        11.90,  2.0,  28, 0, NULL),
    ('CARE-DSC-500', 'Descaler 500 ml',              9.50,  2.0,   5, 0, NULL),
    ('SNK-BIS-CHO',  'Chocolate Biscotti',           4.20,  6.0,  10, 0, NULL),
    ('SNK-CRO-ALM',  'Almond Croissant',             3.40,  8.0,   2, 0, NULL),
    ('SNK-CHO-DRK',  'Dark Chocolate Bar 70%',       3.90,  5.0,  19, 0, NULL),
    ('SNK-HNY-250',  'Wildflower Honey 250 g',       7.80,  2.0,  55, 0, NULL),
    ('SYR-CAR-250',  'Caramel Syrup 250 ml',         8.90,  2.5,  13, 0, NULL),
    ('SYR-VAN-250',  'Vanilla Syrup 250 ml',         8.90,  2.5,  38, 0, NULL),
    ('GIFT-CRD-025', 'Gift Card 25',                25.00,  1.5, 200, 0, NULL),
    ('MERC-TOT-001', 'Canvas Tote Bag',             15.00,  1.0,  70, 0, NULL),
    ('MERC-APR-001', 'Barista Apron',               32.00,  0.5, 110, 0, NULL),
    ('MERC-NTB-A5',  'Brew Journal A5',              9.00,  0.8,  85, 0, NULL);

-- Upsert by SKU: a reload keeps the product ids, so anything that refers to
-- them (a bookmark, another engineer's test) stays valid.
INSERT INTO public.products (sku, name, unit_price)
SELECT sku, name, unit_price FROM demo_product
ON CONFLICT (sku) DO UPDATE
    SET name = excluded.name, unit_price = excluded.unit_price;

-- Each product owns a slice [lo, hi) of [0, 1) proportional to its weight,
-- so one uniform random number picks a product.
CREATE TEMP TABLE demo_pick ON COMMIT DROP AS
SELECT p.id AS product_id, d.sku, d.unit_price, d.first_ago,
       (sum(d.weight) OVER w - d.weight) / sum(d.weight) OVER () AS lo,
        sum(d.weight) OVER w             / sum(d.weight) OVER () AS hi
FROM demo_product d
JOIN public.products p USING (sku)
WINDOW w AS (ORDER BY d.sku);

-- Regulars, and walk-ins (NULL name and email) for about one sale in five.
-- Reserved example domains (RFC 2606).
CREATE TEMP TABLE demo_customer (n integer PRIMARY KEY, name text, email text) ON COMMIT DROP;
INSERT INTO demo_customer VALUES
    ( 0, 'Ada Lovelace',      'ada@example.com'),
    ( 1, 'Amara Okafor',      'amara.okafor@example.org'),
    ( 2, 'Bruno Costa',       'bruno.costa@example.net'),
    ( 3, 'Chen Wei',          'chen.wei@example.com'),
    ( 4, 'Dana Whitfield',    'dana.w@example.org'),
    ( 5, 'Elif Yilmaz',       'elif.yilmaz@example.com'),
    ( 6, 'Farid Haddad',      'farid@example.net'),
    ( 7, 'Greta Lindqvist',   'greta.lindqvist@example.com'),
    ( 8, 'Hiroshi Tanaka',    'h.tanaka@example.org'),
    ( 9, 'Ines Moreau',       'ines.moreau@example.com'),
    (10, 'Jonas Becker',      'jonas.becker@example.net'),
    (11, 'Kavya Reddy',       'kavya.reddy@example.com'),
    (12, 'Liam O''Brien',     'liam.obrien@example.org'),
    (13, 'Maria Santos',      'maria.santos@example.com');

-- ----------------------------------------------------------------- sales --

DELETE FROM public.sales s USING demo_pick pk WHERE s.product_id = pk.product_id;

DO $$ BEGIN PERFORM setseed(0.2026); END $$;

-- Every random() is in a target list of a materialized step, so it is drawn
-- once per row, in a fixed order: same seed, same data.
WITH day AS MATERIALIZED (
    SELECT ago,
           current_date - ago AS d,
           -- ~145 a day, x weekday (Sunday quiet, Saturday busy),
           -- x a trend from 0.9 to 1.1 over the 90 days, x +-10 % noise.
           round(145
                 * (ARRAY[0.80, 0.85, 0.90, 0.95, 1.00, 1.10, 1.25])[extract(dow FROM current_date - ago)::integer + 1]
                 * (1.1 - 0.2 * ago / 89.0)
                 * (0.9 + 0.2 * random()))::integer AS n
    FROM generate_series(89, 0, -1) AS ago
),
draw AS MATERIALIZED (
    SELECT day.ago, day.d,
           random() AS r_product,
           random() AS r_night,
           -- A web shop: three sales in ten at any hour, the rest between
           -- 08:00 and 22:00, busiest mid-afternoon (mean of two uniforms).
           random() AS r_time1,
           random() AS r_time2,
           random() AS r_quantity,
           random() AS r_customer,
           random() AS r_discount
    FROM day, generate_series(1, day.n)
)
INSERT INTO public.sales (product_id, quantity, unit_price, customer_name, customer_email, sold_at)
SELECT pk.product_id,
       -- Mostly 1, sometimes up to 4.
       1 + floor(4 * draw.r_quantity ^ 3)::integer,
       -- One sale in ten at the 10 % loyalty discount.
       CASE WHEN draw.r_discount < 0.1 THEN round(pk.unit_price * 0.9, 2) ELSE pk.unit_price END,
       c.name,
       c.email,
       draw.sold_at
FROM (SELECT draw.*,
             d::timestamptz + CASE WHEN r_night < 0.3
                                   THEN r_time1 * interval '24 hours'
                                   ELSE interval '8 hours' + (r_time1 + r_time2) / 2 * interval '14 hours'
                              END AS sold_at
      FROM draw) AS draw
JOIN demo_pick pk ON draw.r_product >= pk.lo AND draw.r_product < pk.hi
LEFT JOIN demo_customer c
       ON draw.r_customer >= 0.2
      AND c.n = floor((draw.r_customer - 0.2) / 0.8 * 14)::integer
-- Drop, rather than redraw, so the random sequence does not depend on now().
WHERE draw.ago >= pk.first_ago
  AND draw.sold_at <= now();

-- The demo's stores (sql/demo-roles.sql), when the column exists.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = 'public.sales'::regclass AND a.attname = 'store_id' AND NOT a.attisdropped) THEN
        EXECUTE 'UPDATE public.sales s SET store_id = 1 + (s.id % 3)::integer
                 FROM demo_pick pk WHERE s.product_id = pk.product_id';
    END IF;
END
$$;

-- ----------------------------------------------------------------- stock --

-- Stock from the same demand the dashboard sees (last 30 days, / 30): a
-- product with cover_days = 10 is predicted to run out in about 10 days.
-- Reorder level: a week of demand, rounded up to 5, at least 5.
INSERT INTO public.stock (product_id, quantity, reorder_level, updated_at)
SELECT pk.product_id,
       coalesce(d.fixed_stock, round(coalesce(u.units, 0) / 30.0 * d.cover_days)::integer),
       greatest(5, ceil(coalesce(u.units, 0) / 30.0 * 7 / 5) * 5)::integer,
       now()
FROM demo_product d
JOIN demo_pick pk USING (sku)
LEFT JOIN (
    SELECT product_id, sum(quantity) AS units
    FROM public.sales
    WHERE sold_at >= (current_date - 29)::timestamptz
      AND sold_at <  (current_date + 1)::timestamptz
    GROUP BY product_id
) u ON u.product_id = pk.product_id
ON CONFLICT (product_id) DO UPDATE
    SET quantity = excluded.quantity,
        reorder_level = excluded.reorder_level,
        updated_at = excluded.updated_at;

COMMIT;

-- The planner needs to know the sales table grew to pick the index scans.
ANALYZE public.products, public.stock, public.sales;
