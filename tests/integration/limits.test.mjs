// Limits that are options: --max-headers and --max-header-bytes are honoured
// at the values given, not only at their defaults.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../lib/pgcluster.mjs';
import { startDaemon, rawRequest } from '../lib/daemon.mjs';

let pg, daemon;

before(async () => {
  pg = await startCluster({ sql: ['sql/schema.sql', 'sql/install.sql'] });
  daemon = await startDaemon({ db: pg.conninfo, args: ['--max-headers', '5', '--max-header-bytes', '1024'] });
});

after(async () => {
  try {
    if (daemon) await daemon.stopClean();
  } finally {
    if (pg) await pg.stop();
  }
});

const status = (text) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);

test('--max-headers 5: five header lines are served, six get 431', async () => {
  const req = (n) => 'GET /healthz HTTP/1.1\r\n' +
    Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join('') + '\r\n';
  const five = status((await rawRequest(daemon.port, req(5))).text);
  const six = status((await rawRequest(daemon.port, req(6))).text);
  console.log(`5 headers: ${five}; 6 headers: ${six}`);
  assert.ok(five === 200 || five === 503, `five headers are served (got ${five})`);
  assert.equal(six, 431);
});

test('--max-header-bytes 1024: a 1,100-byte head gets 431', async () => {
  const r = await rawRequest(daemon.port, `GET /healthz HTTP/1.1\r\nX-Pad: ${'a'.repeat(1100)}\r\n\r\n`);
  console.log(`1,100-byte head: ${status(r.text)}`);
  assert.equal(status(r.text), 431);
});
