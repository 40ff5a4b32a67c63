#!/usr/bin/env node
// types/dashboard.d.ts from docs/dashboard.schema.json.
//   node scripts/gen-types.mjs           write it
//   node scripts/gen-types.mjs --check   exit 1 if it is not up to date
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateTypes } from './schema-tools.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const schemaPath = path.resolve(here, '..', '..', '..', 'docs', 'dashboard.schema.json');
const outPath = path.resolve(here, '..', 'types', 'dashboard.d.ts');
const text = generateTypes(JSON.parse(fs.readFileSync(schemaPath, 'utf8')));

if (process.argv.includes('--check')) {
  const current = fs.existsSync(outPath) ? fs.readFileSync(outPath, 'utf8') : '';
  if (current !== text) {
    console.error(`${outPath} is not up to date with ${schemaPath}: run npm run gen-types in contrib/client`);
    process.exit(1);
  }
  console.log(`${path.basename(outPath)} is up to date`);
} else {
  fs.writeFileSync(outPath, text);
  console.log(`wrote ${outPath}`);
}
