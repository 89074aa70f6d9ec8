// ctest's entry for the browser tests: skips (exit 77, ctest's
// SKIP_RETURN_CODE) with the reason when chromium, node_modules or the
// binary are missing; otherwise runs the given test files with node's
// own test runner.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { missing } from './harness.mjs';

const why = missing();
if (why) {
  console.log(`browser tests skipped: ${why}`);
  process.exit(77);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2).length ? process.argv.slice(2) : ['web.test.mjs'];
const r = spawnSync(process.execPath, ['--test', ...files], { cwd: here, stdio: 'inherit' });
process.exit(r.status ?? 1);
