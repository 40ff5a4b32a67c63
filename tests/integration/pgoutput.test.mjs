// The pgoutput decoder (src/pgoutput.c) against a real logical replication
// stream: a throwaway cluster with wal_level=logical, a publication of two
// tables, and tests/pgoutput-capture (tests/tools/pgoutput-capture.c, built
// by make check), which streams from a temporary slot, decodes with the
// daemon's code and prints each committed transaction's tables. Two captures run at once on
// the same workload, one with text columns and one with binary 'true'.
//
//   PGOUTPUT_CAPTURE        the capture binary (default <repo>/tests/pgoutput-capture)
//   PGOUTPUT_CAPTURE_SAVE   a directory: keep the raw streams there as
//                           pgoutput-stream.bin and pgoutput-stream-binary.bin
//                           (how tests/unit/pgoutput-stream*.bin were made)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, repoRoot } from '../lib/pgcluster.mjs';

const capturePath = process.env.PGOUTPUT_CAPTURE ||
  path.join(repoRoot, 'tests', 'pgoutput-capture');
const saveDir = process.env.PGOUTPUT_CAPTURE_SAVE;

let pg;

before(async () => {
  pg = await startCluster({ settings: { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 } });
  await pg.psql(`
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TABLE sales (id int PRIMARY KEY, amount numeric, note text, m mood);
    CREATE TABLE stock (sku text PRIMARY KEY, qty int, photo bytea);
    ALTER TABLE stock REPLICA IDENTITY FULL;
    CREATE TABLE other (id int);
    CREATE PUBLICATION cap FOR TABLE sales, stock;
    SELECT pg_replication_origin_create('upstream');`);
});

after(async () => {
  if (pg) await pg.stop();
});

/** Starts a capture; resolves once it streams, with a promise of its output. */
function capture(slot, { binary = false, out } = {}) {
  const args = [...(binary ? ['--binary'] : []), ...(out ? ['--out', out] : []), pg.superConninfo, slot, 'cap'];
  const child = spawn(capturePath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (/^ready$/m.test(stdout)) resolve();
    });
    done.then((r) => reject(new Error(`capture exited before streaming: ${JSON.stringify(r)}`)));
  });
  return ready.then(() => ({ done }));
}

// Every kind of change pgoutput v1 carries, in transactions of one or two
// tables, plus ones it must not report.
const workload = [
  // 1: three rows; the first change sends Relation and, for the enum, Type.
  `INSERT INTO sales VALUES (1, 10, 'a', 'ok'), (2, 20, 'b', 'sad'), (3, 30, 'c', 'happy')`,
  // 2: both tables in one transaction.
  `BEGIN; INSERT INTO stock VALUES ('x', 5, '\\x0102'); UPDATE sales SET amount = 11 WHERE id = 1;
   DELETE FROM sales WHERE id = 3; COMMIT`,
  // 3: REPLICA IDENTITY FULL: the update carries the old row ('O').
  `UPDATE stock SET qty = 6 WHERE sku = 'x'`,
  // 4: a key change carries the old key ('K').
  `UPDATE sales SET id = 10 WHERE id = 1`,
  // 5, 6: a TOASTed value, then an update that leaves it unchanged ('u').
  `INSERT INTO sales (id, note) SELECT 20, string_agg(md5(i::text), '') FROM generate_series(1, 400) i`,
  `UPDATE sales SET amount = 1 WHERE id = 20`,
  // not published: no transaction at all (PostgreSQL 15 skips empty ones)
  `INSERT INTO other VALUES (1)`,
  // 7: a transactional logical message inside a transaction.
  `BEGIN; SELECT pg_logical_emit_message(true, 'pgpush.test', 'hello'); INSERT INTO stock VALUES ('y', 1, NULL); COMMIT`,
  // 8: a replication origin: an Origin message after Begin.
  `SELECT pg_replication_origin_session_setup('upstream');
   BEGIN; SELECT pg_replication_origin_xact_setup('0/1234', now()); INSERT INTO stock VALUES ('z', 2, NULL); COMMIT`,
  // 9: one Truncate of both tables.
  `TRUNCATE sales, stock`,
  // 10: a new column: Relation is sent again for the same id.
  `ALTER TABLE sales ADD COLUMN extra int; INSERT INTO sales VALUES (30, 1, 'n', 'ok', 7)`,
  // 11: a larger transaction is still one commit.
  `INSERT INTO stock SELECT 'k' || i, i, NULL FROM generate_series(1, 500) i`,
  // rolled back: nothing
  `BEGIN; INSERT INTO sales VALUES (99); ROLLBACK`,
  // 12: not-published plus published
  `BEGIN; INSERT INTO other VALUES (2); DELETE FROM stock WHERE sku = 'k1'; COMMIT`,
];

const expected = [
  'public.sales',
  'public.sales,public.stock',
  'public.stock',
  'public.sales',
  'public.sales',
  'public.sales',
  'public.stock',
  'public.stock',
  'public.sales,public.stock',
  'public.sales',
  'public.stock',
  'public.stock',
];

test('a real pgoutput stream gives each transaction its tables', async () => {
  assert.ok(fs.existsSync(capturePath), `${capturePath} is missing: run make check (or make tests/pgoutput-capture)`);
  const outDir = saveDir || fs.mkdtempSync(path.join(os.tmpdir(), 'pgoutput-'));
  const text = await capture('cap_text', { out: path.join(outDir, 'pgoutput-stream.bin') });
  const bin = await capture('cap_binary', { binary: true, out: path.join(outDir, 'pgoutput-stream-binary.bin') });

  const slots = (await pg.psql(`SELECT slot_name || ' ' || temporary FROM pg_replication_slots ORDER BY 1`)).trim();
  assert.equal(slots, 'cap_binary true\ncap_text true', 'two temporary slots while streaming');
  for (const sql of workload) await pg.psql(sql);
  await pg.psql(`SELECT pg_logical_emit_message(false, 'pgpush.capture.end', '')`);

  for (const [name, c] of [['text', text], ['binary', bin]]) {
    const r = await c.done;
    assert.equal(r.code, 0, `${name} capture failed: ${r.stderr}\n${r.stdout}`);
    const lines = r.stdout.trim().split('\n');
    const commits = lines.filter((l) => l.startsWith('commit ')).map((l) => l.slice(7).split(',').sort().join(','));
    assert.deepEqual(commits, expected, `${name}: one commit per transaction, with its tables`);
    const relations = lines.filter((l) => l.startsWith('relation '));
    // Relation comes before a relation's first change, and again after
    // anything that invalidates the walsender's cache (TRUNCATE, ALTER).
    assert.match(relations[0], /^relation \d+ public\.sales d 4$/, `${name}: ${relations}`);
    assert.match(relations[1], /^relation \d+ public\.stock f 3$/, `${name}: ${relations}`);
    const salesIds = new Set(relations.filter((l) => l.includes(' public.sales ')).map((l) => l.split(' ')[1]));
    assert.equal(salesIds.size, 1, `${name}: sales keeps its id: ${relations}`);
    assert.ok(relations.some((l) => / public\.sales d 5$/.test(l)), `${name}: sales replaced with 5 columns: ${relations}`);
    assert.deepEqual(lines.filter((l) => l.startsWith('message ')),
      ['message pgpush.test', 'message pgpush.capture.end']);
    const kinds = Object.fromEntries(lines.find((l) => l.startsWith('kinds ')).slice(6).split(' ').map((kv) => kv.split('=')));
    for (const k of ['B', 'C', 'R', 'Y', 'O', 'I', 'U', 'D', 'T', 'M']) assert.ok(kinds[k] > 0, `${name}: saw '${k}' (${JSON.stringify(kinds)})`);
    assert.equal(+kinds.B, expected.length);
    assert.equal(+kinds.C, expected.length);
    assert.match(lines.at(-1), /^confirmed [0-9A-F]+\/[0-9A-F]+$/, `${name}: the server took the status update`);
    console.log(`${name}: ${commits.length} commits, messages ${JSON.stringify(kinds)}, ${lines.at(-1)}`);
  }
  const left = (await pg.psql(`SELECT count(*) FROM pg_replication_slots`)).trim();
  assert.equal(left, '0', 'temporary slots are gone with their connections');
  if (!saveDir) fs.rmSync(outDir, { recursive: true, force: true });
});
