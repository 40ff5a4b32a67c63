-- pgbench custom script: one sale in the reference schema (sql/schema.sql).
--
--   pgbench -n -f contrib/demo/simulator.sql -R 1 -T 86400 -c 1 <db>
--
-- Each transaction sells one product: it inserts a row into sales and takes
-- the quantity off stock. The product is picked like a random recent sale
-- (so popular products stay popular; the fallback for an empty sales table
-- is any product). Stock never goes negative: when the shelf cannot cover the
-- sale, or now and then once it is at or below its reorder level, the product
-- is restocked first. Every statement rings pgpush's doorbell (statement-level
-- triggers on sales and stock); the daemon sees one commit.

-- How far back to look for the sale whose product we sell again.
\set back random(0, 1999)
-- Chance of a restock when at or below the reorder level (percent, below).
\set restock random(1, 100)
-- One sale in ten at the 10 % loyalty discount.
\set discount random(1, 100)
-- A regular customer (0-13), or a walk-in without name and email (14-17).
\set who random(0, 17)

BEGIN;

SELECT p.id AS product_id,
       1 + floor(4 * random() ^ 3)::integer AS qty
FROM public.products p
WHERE p.id = coalesce(
        (SELECT s.product_id
         FROM public.sales s
         WHERE s.id >= (SELECT max(id) FROM public.sales) - :back
         ORDER BY s.id
         LIMIT 1),
        (SELECT id FROM public.products ORDER BY random() LIMIT 1))
\gset

UPDATE public.stock
SET quantity = greatest(quantity, 0) + greatest(2 * reorder_level, 20),
    updated_at = now()
WHERE product_id = :product_id
  AND (quantity < :qty OR (quantity - :qty <= reorder_level AND :restock <= 10));

INSERT INTO public.sales (product_id, quantity, unit_price, customer_name, customer_email)
SELECT p.id,
       :qty,
       CASE WHEN :discount <= 10 THEN round(p.unit_price * 0.9, 2) ELSE p.unit_price END,
       c.name,
       c.email
FROM public.products p
LEFT JOIN (VALUES
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
    (13, 'Maria Santos',      'maria.santos@example.com')
) AS c (n, name, email) ON c.n = :who
WHERE p.id = :product_id;

UPDATE public.stock
SET quantity = quantity - :qty,
    updated_at = now()
WHERE product_id = :product_id;

END;
