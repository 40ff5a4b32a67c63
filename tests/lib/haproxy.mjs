// haproxy running the recipe contrib/haproxy/haproxy.cfg, for the tests and
// the benchmark: the file itself, adapted only in where it listens, where
// the instances are, its maxconn, and the system service's lines (chroot,
// user, syslog, admin socket), which a private copy run as the current user
// on a free port cannot have. Never the system service.
//
//   import { findHaproxy, startHaproxy } from '../lib/haproxy.mjs';
//   const hp = findHaproxy();               // { bin } or { why }
//   const lb = await startHaproxy(hp.bin, [port1, port2, port3]);
//   lb.url; await lb.serverStates();        // { pgpushd1: 'UP', ... }
//   await lb.stop();
//
// haproxy: $HAPROXY, else haproxy on PATH or /usr/sbin/haproxy.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, freePort } from './pgcluster.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const live = new Set();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

export function findHaproxy() {
  const candidates = [process.env.HAPROXY, '/usr/sbin/haproxy'];
  const which = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' });
  if (which.status === 0) candidates.unshift(which.stdout.trim());
  for (const c of candidates) if (c && fs.existsSync(c)) return { bin: c };
  return { why: 'haproxy is not installed (apt-get install haproxy; quickstart does it)' };
}

/** The recipe, adapted; throws if the recipe no longer has what is replaced. */
export function haproxyConfig({ port, backends, statsSock, maxconn }) {
  let cfg = fs.readFileSync(path.join(repoRoot, 'contrib', 'haproxy', 'haproxy.cfg'), 'utf8');
  cfg = cfg.replace(/^\s*(chroot|stats socket|user|group|daemon|log \/dev\/log)\b.*\n/gm, '');
  cfg = cfg.replace(/^global\n/m, `global\n\tstats socket ${statsSock} mode 600 level admin\n`);
  // Within this process's file limit (haproxy wants 2 x maxconn + some).
  cfg = cfg.replace(/^(\s*)maxconn \d+$/m, `$1maxconn ${maxconn}`);
  if (!/^\s*bind :3000$/m.test(cfg)) throw new Error('contrib/haproxy/haproxy.cfg: no "bind :3000" line');
  cfg = cfg.replace(/^(\s*)bind :3000$/m, `$1bind 127.0.0.1:${port}`);
  // The recipe's server lines, kept whole but for the address; as many as
  // there are backends (the first line's options for any beyond them).
  const lines = [...cfg.matchAll(/^(\s*server pgpushd)(\d+) \S+( .*)$/gm)];
  if (!lines.length) throw new Error('contrib/haproxy/haproxy.cfg: no "server pgpushdN" line');
  const [, head, , tail] = lines[0];
  const servers = backends.map((p, i) => `${head}${i + 1} 127.0.0.1:${p}${tail.replace(/cookie pgpushd\d+/, `cookie pgpushd${i + 1}`)}`);
  cfg = cfg.replace(/^\s*server pgpushd\d+ .*\n/gm, '');
  cfg = cfg.replace(/\s*$/, `\n${servers.join('\n')}\n`);
  return cfg;
}

export async function startHaproxy(bin, backends, { maxconn = 2000 } = {}) {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'pgpush-haproxy-'));
  const port = await freePort();
  const statsSock = path.join(prefix, 'admin.sock');
  const file = path.join(prefix, 'haproxy.cfg');
  fs.writeFileSync(file, haproxyConfig({ port, backends, statsSock, maxconn }));
  const check = spawnSync(bin, ['-c', '-f', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy -c -f ${file}: ${check.stdout}${check.stderr}`);
  const proc = spawn(bin, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((r) => proc.on('exit', () => { live.delete(proc); r(); }));

  /** The backend's servers from the statistics socket: { pgpushd1: 'UP', ... }. */
  const serverStates = () => new Promise((resolve, reject) => {
    const c = net.connect(statsSock);
    let text = '';
    c.on('connect', () => c.write('show stat\n'));
    c.on('data', (d) => { text += d; });
    c.on('end', () => {
      const rows = text.split('\n').filter((l) => l.startsWith('pgpushd,pgpushd'));
      resolve(Object.fromEntries(rows.map((l) => { const f = l.split(','); return [f[1], f[17]]; })));
    });
    c.on('error', reject);
  });
  const lb = {
    port, url: `http://127.0.0.1:${port}`, statsSock, proc, file,
    log: () => out,
    serverStates,
    async stop() {
      proc.kill('SIGUSR1'); // soft stop
      await Promise.race([exited, sleep(3000)]);
      proc.kill('SIGKILL');
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
  for (let k = 0; k < 100; k++) {
    if (fs.existsSync(statsSock)) {
      try {
        await serverStates();
        return lb;
      } catch { /* not yet */ }
    }
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  await lb.stop();
  throw new Error(`haproxy did not start: ${out}`);
}
