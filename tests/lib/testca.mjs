// A throwaway certificate authority for the TLS tests, made with the
// openssl command line: a CA key and certificate, and server certificates
// (SAN localhost, 127.0.0.1) it signs, each with a serial of our choosing.
//
//   const ca = makeCA(dir);
//   const { cert, key, serial, spki } = ca.issue('server', { serial: '1001' });
//
// cert is the leaf followed by the CA (a chain, as --tls-cert takes it);
// spki is the base64 SHA-256 of the leaf's public key (Chromium's
// --ignore-certificate-errors-spki-list).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const openssl = (args, opts = {}) => execFileSync('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });

export function makeCA(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', '/CN=pgpush test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const ca = fs.readFileSync(caCert, 'utf8');

  function issue(name, { serial = '1000', cn = 'localhost' } = {}) {
    const key = path.join(dir, `${name}.key`);
    const csr = path.join(dir, `${name}.csr`);
    const leaf = path.join(dir, `${name}.leaf.pem`);
    const chain = path.join(dir, `${name}.pem`);
    const ext = path.join(dir, `${name}.ext`);
    fs.writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' +
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
      '-out', csr, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${serial}`,
      '-days', '1', '-out', leaf, '-extfile', ext]);
    fs.writeFileSync(chain, fs.readFileSync(leaf, 'utf8') + ca);
    const pub = crypto.createPublicKey(fs.readFileSync(key)).export({ type: 'spki', format: 'der' });
    const spki = crypto.createHash('sha256').update(pub).digest('base64');
    return { cert: chain, key, serial: serial.toUpperCase(), spki };
  }
  return { ca, caFile: caCert, issue };
}
