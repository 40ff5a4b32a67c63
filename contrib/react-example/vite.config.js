// Vite 4 (runs on Node 18, Debian 12's): `npm run dev` serves the app with
// hot reload and proxies /socket.io (WebSocket included) to pgpushd, so the
// page stays same-origin; `npm run build` writes dist/, which
// `pgpushd --static-dir dist` serves as it is.
//
//   PGPUSHD_URL  where pgpushd listens (default http://127.0.0.1:3000, the
//                port of ./quickstart demo)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const here = path.dirname(fileURLToPath(import.meta.url));
const client = path.resolve(here, '..', 'client');

export default defineConfig({
  plugins: [react()],
  base: './',
  resolve: {
    // pgpush-client straight from contrib/client (in an app of your own:
    // npm install pgpush-client, and no alias).
    alias: [
      { find: /^pgpush-client\/react$/, replacement: path.join(client, 'src', 'react.js') },
      { find: /^pgpush-client$/, replacement: path.join(client, 'src', 'index.js') },
    ],
    // One React and one socket.io-client: this app's, also for contrib/client's files.
    dedupe: ['react', 'react-dom', 'socket.io-client'],
  },
  server: {
    port: 5173,
    fs: { allow: [here, client] },
    proxy: {
      '/socket.io': { target: process.env.PGPUSHD_URL || 'http://127.0.0.1:3000', ws: true },
    },
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
});
