// The browser tests' world: a fresh database on the private PostgreSQL
// (scripts/pg-private), the real luacs binary from the build directory
// serving web/ with the shipped policy, API tokens made with `luacs token
// add`, simulated CPEs (cpe.mjs) and headless Debian chromium driven by
// playwright-core. Everything listens on 127.0.0.1 and stops by itself.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const buildDir = process.env.LUACS_BUILD_DIR || path.join(repo, 'build/dev');
export const binary = process.env.LUACS_BINARY || path.join(buildDir, 'luacs');
export const chromiumPath = process.env.LUACS_CHROMIUM || '/usr/bin/chromium';
export const shotsDir = process.env.LUACS_SHOTS_DIR || path.join(buildDir, 'browser-shots');

// Why the tests cannot run here, or null. The ctest entry skips (exit 77)
// with this message rather than failing on a machine without a browser.
export function missing() {
  if (!fs.existsSync(chromiumPath)) return `no ${chromiumPath} (apt-get install chromium; scripts/install-deps does)`;
  if (!fs.existsSync(path.join(repo, 'tests/browser/node_modules/playwright-core'))) return 'no tests/browser/node_modules (npm ci in tests/browser; scripts/install-deps does)';
  if (!fs.existsSync(binary)) return `no luacs binary at ${binary} (build it, or set LUACS_BINARY)`;
  return null;
}

function adminDsn() {
  if (process.env.LUACS_TEST_DSN) return process.env.LUACS_TEST_DSN;
  const script = process.env.LUACS_PG_PRIVATE || path.join(repo, 'scripts/pg-private');
  return execFileSync(script, ['dsn'], { encoding: 'utf8' }).trim();
}

function psql(dsn, sql) {
  return execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', dsn, '-c', sql],
    { encoding: 'utf8', env: { ...process.env, PGOPTIONS: '--client-min-messages=warning' } });
}

// Waits for `pred` (sync or async) to be truthy, polling; throws with
// `what` after `ms`. For state the tests cannot be told about by an event
// (a row in PostgreSQL, a simulated CPE's counter).
export async function until(pred, what, ms = 20000, every = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export class Stack {
  // extraIni: more ini text (whole sections) appended to the config.
  async start({ tag = 'web', extraIni = '', policyDir = path.join(repo, 'policies/default'), overviewRefresh = '1s' } = {}) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `luacs-browser-${tag}-`));
    const admin = adminDsn();
    this.dbName = `luacs_br_${tag}_${process.pid}`;
    psql(admin, `DROP DATABASE IF EXISTS ${this.dbName}`);
    psql(admin, `CREATE DATABASE ${this.dbName}`);
    this.adminDsn = admin;
    this.dsn = `${admin} dbname=${this.dbName}`;
    this.policyDir = policyDir;
    this.ini = path.join(this.tmp, 'luacs.ini');
    fs.writeFileSync(this.ini, [
      '[cwmp]', 'listen = 127.0.0.1:0', 'workers = 2',
      '[store]', `dsn = ${this.dsn}`, `sql_dir = ${path.join(repo, 'sql')}`, 'flush_interval = 5ms',
      '[policy]', `dir = ${policyDir}`,
      '[files]', 'listen = 127.0.0.1:0', `dir = ${path.join(this.tmp, 'files')}`, 'secret = browser-test-secret',
      '[nbi]', 'listen = 127.0.0.1:0', `web_dir = ${path.join(repo, 'web')}`, 'history_step = 1s', `overview_refresh = ${overviewRefresh}`,
      '[connection_request]', 'allow = 127.0.0.0/8', 'deny =', 'username = acs', 'password = secret', 'timeout = 2s',
      '[control]', `socket = ${path.join(this.tmp, 'control.sock')}`,
      '[log]', 'level = info',
      extraIni, '',
    ].join('\n'));
    fs.mkdirSync(path.join(this.tmp, 'files'));
    this.log = '';
    this.proc = spawn(binary, ['--config', this.ini], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d) => { this.log += d.toString(); };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    const exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
    // Dying mid-test says why: the end of its log, on the test's stderr.
    this.proc.once('exit', (code, signal) => {
      if (!this.stopping) console.error(`luacs exited (${code ?? signal}) during the tests; the end of its log:\n${this.log.slice(-8000)}`);
    });
    const ports = await Promise.race([
      until(() => {
        const m = this.log.match(/listening on 127\.0\.0\.1:(\d+) .*files on (?:https:\/\/)?127\.0\.0\.1:(\d+); API on (?:https:\/\/)?127\.0\.0\.1:(\d+)/);
        return m && { cwmp: Number(m[1]), files: Number(m[2]), api: Number(m[3]) };
      }, 'luacs to listen', 60000, 50),
      exited.then((code) => { throw new Error(`luacs exited (${code}) before listening:\n${this.log}`); }),
    ]);
    this.cwmpUrl = `http://127.0.0.1:${ports.cwmp}/`;
    this.base = `http://127.0.0.1:${ports.api}`;
    this.filesBase = `http://127.0.0.1:${ports.files}`;
    return this;
  }

  // `luacs token add NAME --role ROLE [--scope-tag TAG]` -> the token.
  token(name, role, scope) {
    const args = ['token', '-c', this.ini, 'add', name, '--role', role];
    if (scope) args.push('--scope-tag', scope);
    const out = execFileSync(binary, args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = out.match(/lcs_\S+/);
    if (!m) throw new Error(`no token in: ${out}`);
    return m[0];
  }

  sql(query) {
    return psql(this.dsn, query).trim();
  }

  // A bearer-token API call from the test itself (not the browser).
  async call(token, method, p, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json, text, headers: res.headers };
  }

  async stop() {
    this.stopping = true;
    if (this.proc && this.proc.exitCode === null) {
      const gone = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 20000);
      await gone;
      clearTimeout(t);
    }
    try {
      psql(this.adminDsn, `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`);
    } catch { /* the cluster may be gone already */ }
    if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

// Headless chromium (Debian's, no browser download) through playwright-core.
export async function browser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

// A page logged in with `token` through the login form, as a person does.
export async function loggedIn(b, stack, token, { viewport = { width: 1280, height: 900 }, colorScheme = 'light' } = {}) {
  const context = await b.newContext({ viewport, colorScheme, timezoneId: 'Europe/Berlin', locale: 'en-GB' });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  await page.goto(`${stack.base}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  return page;
}

export async function shot(page, name) {
  fs.mkdirSync(shotsDir, { recursive: true });
  // From the top, so the sticky header is where it belongs in a full-page shot.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shotsDir, `${name}.png`), fullPage: true });
}
