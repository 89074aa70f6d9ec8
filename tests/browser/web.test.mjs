// The operator web page in a real browser (issue 16): Debian's chromium,
// headless, against the real luacs binary, a fresh PostgreSQL database and
// simulated CPEs (cpe.mjs) speaking CWMP over HTTP. One luacs for the
// whole file; the tests run in order and each makes its own devices.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { Cpe } from './cpe.mjs';
import { Stack, browser, loggedIn, repo, shot, until } from './harness.mjs';

let stack, b, admin, operator, reader;
let policyDir;
const cpes = [];

function cpe(serial, opts = {}) {
  const c = new Cpe({ acs: stack.cwmpUrl, serial, ...opts });
  cpes.push(c);
  return c;
}

// The device as the API sees it (tags, parameters).
async function device(id) {
  const r = await stack.call(admin, 'GET', `/devices/${encodeURIComponent(id)}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// Runs sessions of `c` until `pred()` holds. A task queued through the API
// reaches a luacs that has the device cached through a PostgreSQL
// notification, so a session started the very moment the task was queued
// may not run it yet; the next one does (as a real device's next inform).
async function sessionsUntil(c, pred, what) {
  return until(async () => {
    await c.inform(['2 PERIODIC']);
    return pred();
  }, what, 20000, 200);
}

// A new device's first session, and the wait until its row (tagged
// pending by the shipped policy) is committed: the store writes a session's
// results in batches, just after the session.
async function boot(c) {
  await c.inform(['0 BOOTSTRAP', '1 BOOT']);
  await until(async () => {
    const r = await stack.call(admin, 'GET', `/devices/${encodeURIComponent(c.id)}?params=-`);
    return r.status === 200 && r.json.tags.includes('pending');
  }, `${c.serial} to be stored`);
}

const noCspViolation = (page) => assert.deepEqual(page.errors.filter((e) => /Content Security Policy|Refused to/i.test(e)), []);

before(async () => {
  // A copy of the shipped policy, so one test can break it.
  policyDir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'luacs-browser-policy-'));
  for (const f of fs.readdirSync(path.join(repo, 'policies/default'))) {
    if (f.endsWith('.lua') && !f.endsWith('_test.lua')) fs.copyFileSync(path.join(repo, 'policies/default', f), path.join(policyDir, f));
  }
  stack = await new Stack().start({ tag: 'web', policyDir });
  admin = stack.token('boss', 'admin');
  operator = stack.token('helpdesk', 'operate');
  reader = stack.token('noc', 'read');
  b = await browser();
});

after(async () => {
  for (const c of cpes) c.close();
  if (b) await b.close();
  if (stack) await stack.stop();
  if (policyDir) fs.rmSync(policyDir, { recursive: true, force: true });
});

test('log in; a new device appears in Pending; Adopt; its next session provisions it', async () => {
  const c = cpe('ADOPT0001', { productClass: 'Acme Box' }); // a space: the id holds %20
  await boot(c);

  const page = await loggedIn(b, stack, operator);
  await shot(page, 'overview');
  await page.getByRole('link', { name: 'Pending', exact: true }).click();
  await page.getByRole('heading', { name: 'Pending adoption' }).waitFor();
  const row = page.getByRole('row').filter({ hasText: 'ADOPT0001' });
  await row.waitFor();
  await shot(page, 'pending');
  await row.getByRole('button', { name: /^Adopt / }).click();
  const entry = page.locator(`.adoption[data-device="${c.id}"]`);
  await entry.getByText(/queued as task \d+/).waitFor();

  // The device's next session runs tasks.adopt: the shipped policy pushes
  // the periodic inform settings with SetParameterValues.
  await sessionsUntil(c, () => c.got('SetParameterValues').length > 0, 'the adoption to run');
  const spv = c.got('SetParameterValues');
  assert.equal(spv.length, 1, 'one SetParameterValues reached the CPE');
  assert.match(spv[0].body, /Device\.ManagementServer\.PeriodicInformInterval/);
  assert.equal(c.value('Device.ManagementServer.PeriodicInformInterval'), '3600');

  await page.locator(`.adoption[data-device="${c.id}"][data-state="done"]`).waitFor({ timeout: 15000 });
  await entry.getByText(/tags now: .*provisioned/).waitFor();
  const tags = await until(async () => { const t = (await device(c.id)).tags; return t.includes('provisioned') && t; }, 'the tag provisioned');
  assert.ok(!tags.includes('pending'), `tags ${tags}`);

  // The device page says so too.
  await entry.getByRole('link', { name: /ADOPT0001/ }).first().click();
  await page.locator('.tags .tag', { hasText: 'provisioned' }).first().waitFor();
  await page.locator('section[aria-label="Tasks"] .badge.st-done').first().waitFor();
  await shot(page, 'device');
  noCspViolation(page);
  await page.context().close();
});

test('filter by tag and by model; open a device; add and remove a tag; edit a value', async () => {
  const gold = cpe('FILT0001', { model: 'AcmeBox 200' });
  const plain = cpe('FILT0002', { model: 'AcmeBox 300' });
  await boot(gold);
  await boot(plain);
  assert.equal((await stack.call(operator, 'PUT', `/devices/${encodeURIComponent(gold.id)}/tags/gold`)).status, 204);

  const page = await loggedIn(b, stack, operator);
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  const filters = page.locator('form.filters');
  await filters.getByLabel('Tag', { exact: true }).fill('gold');
  await filters.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/#\/devices\?tag=gold/);
  const table = page.locator('.table-wrap table').last();
  await table.getByText('FILT0001').first().waitFor();
  assert.equal(await table.getByText('FILT0002').count(), 0, 'the untagged device is filtered out');
  await page.locator('.count', { hasText: '1 device matches' }).waitFor();

  await filters.getByRole('button', { name: 'Clear' }).click();
  await page.waitForURL(/#\/devices$/);
  await page.locator('form.filters').getByLabel('Model', { exact: true }).fill('AcmeBox 300');
  await page.locator('form.filters').getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/model=AcmeBox/);
  await page.locator('.table-wrap table').last().getByText('FILT0002').first().waitFor();
  assert.equal(await page.locator('.table-wrap table').last().getByText('FILT0001').count(), 0);
  await shot(page, 'devices');

  // Open the device from the list.
  await page.getByRole('link', { name: plain.id }).click();
  await page.getByRole('heading', { name: plain.id, level: 1 }).waitFor();
  await page.getByLabel('New tag').fill('lab');
  await page.getByRole('button', { name: 'Add tag' }).click();
  await page.getByRole('button', { name: 'Remove tag lab' }).waitFor();
  assert.ok((await device(plain.id)).tags.includes('lab'));
  await page.getByRole('button', { name: 'Remove tag lab' }).click();
  await until(async () => !(await device(plain.id)).tags.includes('lab'), 'the tag to go');
  // The page redraws once the DELETE's answer is back, which may be a moment
  // after the store shows it gone.
  await page.getByRole('button', { name: 'Remove tag lab' }).waitFor({ state: 'detached' });

  // Edit a writable value: a SetParameterValues task the CPE gets at its
  // next session.
  await page.getByLabel('Search parameters').fill('SSID.1.SSID');
  const leaf = page.locator('.tree .leaf[data-name="Device.WiFi.SSID.1.SSID"]');
  await leaf.getByRole('button', { name: 'Edit Device.WiFi.SSID.1.SSID' }).click();
  await leaf.getByLabel('New value of Device.WiFi.SSID.1.SSID').fill('browser-ssid');
  await leaf.getByRole('button', { name: 'Save' }).click();
  await leaf.getByText(/task \d+ queued/).waitFor();
  await shot(page, 'device-edit');
  await sessionsUntil(plain, () => plain.got('SetParameterValues').length > 0, 'the SetParameterValues to run');
  const spv = plain.got('SetParameterValues');
  assert.ok(spv.some((r) => /Device\.WiFi\.SSID\.1\.SSID/.test(r.body) && /browser-ssid/.test(r.body)), 'the SetParameterValues reached the CPE');
  assert.equal(plain.value('Device.WiFi.SSID.1.SSID'), 'browser-ssid');
  // The page's task list shows it done (refreshed by the device's session event).
  await page.locator('section[aria-label="Tasks"] .badge.st-done').first().waitFor({ timeout: 15000 });

  // Read writability: a GetParameterNames the CPE answers; then Edit stays
  // on what it calls writable and a read-only value shows as such.
  await page.getByRole('button', { name: 'Read writability' }).click();
  await sessionsUntil(plain, () => plain.got('GetParameterNames').length > 0, 'the GetParameterNames to run');
  await page.getByLabel('Search parameters').fill('DeviceInfo.');
  const version = page.locator('.tree .leaf[data-name="Device.DeviceInfo.SoftwareVersion"]');
  await version.locator('.badge', { hasText: 'read-only' }).waitFor({ timeout: 15000 });
  assert.equal(await version.getByRole('button', { name: /^Edit / }).count(), 0, 'no Edit on a read-only value');
  const code = page.locator('.tree .leaf[data-name="Device.DeviceInfo.ProvisioningCode"]');
  await code.getByRole('button', { name: 'Edit Device.DeviceInfo.ProvisioningCode' }).waitFor();
  noCspViolation(page);
  await page.context().close();
});

test('Connect now wakes the simulated CPE and shows the outcome', async () => {
  const c = cpe('WAKE0001');
  await c.listen();
  await boot(c);
  const page = await loggedIn(b, stack, operator);
  await page.goto(`${stack.base}/#/device/${encodeURIComponent(c.id)}`);
  await page.getByRole('button', { name: 'Connect now' }).click();
  await page.locator('.action-out[data-state]:not([data-state="waiting"])').waitFor({ timeout: 40000 });
  const text = await page.locator('.action-out').textContent();
  assert.match(text, /opened a session [\d,.]+ ms after the request/, text);
  await page.context().close();
});

test('a bulk reboot over a tag: the job progress bar reaches 100 %', async () => {
  const fleet = [cpe('BULK0001'), cpe('BULK0002'), cpe('BULK0003')];
  for (const c of fleet) {
    await boot(c);
    assert.equal((await stack.call(operator, 'PUT', `/devices/${encodeURIComponent(c.id)}/tags/bulk`)).status, 204);
  }
  const page = await loggedIn(b, stack, operator);
  await page.goto(`${stack.base}/#/devices?tag=bulk`);
  await page.locator('.count', { hasText: '3 devices match' }).waitFor();
  await page.getByText('Bulk action').click();
  await page.getByLabel('Devices', { exact: true }).selectOption('all');
  await page.getByLabel('Action', { exact: true }).selectOption('reboot');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Reboot' }).click();
  const job = page.locator('section.job');
  await job.waitFor();
  await job.getByText(/queued|queuing/).first().waitFor();
  // The devices' next sessions run the reboots.
  await until(async () => (await stack.call(operator, 'GET', '/jobs?limit=1')).json.jobs?.[0]?.queued === 3, 'the job to queue 3 tasks');
  for (const c of fleet) await sessionsUntil(c, () => c.got('Reboot').length > 0, `${c.serial}'s Reboot`);
  for (const c of fleet) assert.equal(c.got('Reboot').length, 1, `${c.serial} got its Reboot once`);
  await page.locator('section.job[data-state="finished"]').waitFor({ timeout: 15000 });
  assert.equal(await page.locator('section.job progress').evaluate((p) => p.value), 1);
  await page.locator('section.job .progress-text', { hasText: '100 %' }).waitFor();
  noCspViolation(page);
  await page.context().close();
});

test('reloading a broken policy shows the file:line error; the old policy keeps serving', async () => {
  const page = await loggedIn(b, stack, admin);
  await page.getByRole('link', { name: 'Policy', exact: true }).click();
  const gen = (await page.locator('dd.generation').textContent()).trim();
  // One row per CWMP worker with the generation it runs.
  await page.getByRole('table', { name: 'Workers' }).waitFor();
  assert.ok((await page.getByRole('table', { name: 'Workers' }).locator('tbody tr').count()) >= 1);
  assert.doesNotMatch(await page.locator('main').innerText(), /\b(null|undefined|NaN)\b/, 'no placeholder leaks into the page');
  await shot(page, 'policy');
  fs.writeFileSync(path.join(policyDir, '50-broken.lua'), '-- a deliberate mistake\nlocal x = = 1\n');
  try {
    await page.getByRole('button', { name: 'Reload policy' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Reload' }).click();
    await page.locator('.policy-out[data-result="failed"]').waitFor();
    const place = await page.locator('.policy-out mark.place').first().textContent();
    assert.match(place, /50-broken\.lua:2$/);
    assert.equal((await page.locator('dd.generation').textContent()).trim(), gen, 'the old generation keeps serving');
    await shot(page, 'policy-broken');
    // And it does serve: a new device still gets the adoption policy's tag.
    const c = cpe('POLICY0001');
    await boot(c);
  } finally {
    fs.rmSync(path.join(policyDir, '50-broken.lua'), { force: true });
  }
  await page.context().close();
});

test('a read-only token sees no action buttons; forged and CSRF-less requests are refused', async () => {
  const c = cpe('READ0001');
  await boot(c);
  const page = await loggedIn(b, stack, reader);
  await page.goto(`${stack.base}/#/device/${encodeURIComponent(c.id)}`);
  await page.getByRole('heading', { name: c.id, level: 1 }).waitFor();
  await page.locator('section[aria-label="Parameters"] .leaf').first().waitFor({ state: 'attached' });
  // Times are the viewer's (the browser runs in Europe/Berlin, luacs answers UTC).
  const when = page.locator('section[aria-label="Identity"] time').first();
  const local = new Date(await when.getAttribute('datetime')).toLocaleTimeString('en-GB', { timeZone: 'Europe/Berlin' });
  assert.ok((await when.textContent()).includes(local), `${await when.textContent()} shows ${local}`);
  for (const name of ['Connect now', 'Reboot', 'Factory reset', 'Delete device', 'Add tag', 'Send firmware']) {
    assert.equal(await page.getByRole('button', { name }).count(), 0, `no ${name} button`);
  }
  assert.equal(await page.locator('.tree button').count(), 0, 'no Edit or Refresh in the tree');
  await page.goto(`${stack.base}/#/pending`);
  await page.getByRole('row').filter({ hasText: 'READ0001' }).waitFor();
  assert.equal(await page.getByRole('button', { name: /^Adopt/ }).count(), 0);
  await page.goto(`${stack.base}/#/devices`);
  await page.locator('.table-wrap').waitFor();
  assert.equal(await page.getByText('Bulk action').count(), 0);
  await page.goto(`${stack.base}/#/policy`);
  await page.locator('dd.generation').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Reload policy' }).count(), 0);

  // A forged POST with the read session's own CSRF token: the role refuses it.
  const forged = await page.evaluate(async (id) => {
    const s = await (await fetch('/login')).json();
    const r = await fetch(`/devices/${encodeURIComponent(id)}/tasks`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf }, body: JSON.stringify({ name: 'reboot' }),
    });
    return r.status;
  }, c.id);
  assert.equal(forged, 403);
  await page.context().close();

  // An operator's session without the CSRF header: refused, nothing done.
  const op = await loggedIn(b, stack, operator);
  const noCsrf = await op.evaluate(async (id) => {
    const r = await fetch(`/devices/${encodeURIComponent(id)}/tags/forged`, { method: 'PUT' });
    return { status: r.status, body: await r.text() };
  }, c.id);
  assert.equal(noCsrf.status, 403);
  assert.match(noCsrf.body, /CSRF/);
  assert.ok(!(await device(c.id)).tags.includes('forged'));
  await op.context().close();
});

test('files: upload with a progress bar, list, delete', async () => {
  const page = await loggedIn(b, stack, admin);
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('heading', { name: 'Files', level: 1 }).waitFor();
  await page.getByLabel('File', { exact: true }).setInputFiles({ name: 'fw-1.0.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(300000, 7) });
  await page.getByLabel('Version').fill('1.0');
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('.progress-text', { hasText: '100 %' }).waitFor();
  const row = page.getByRole('row').filter({ hasText: 'fw-1.0.bin' });
  await row.waitFor();
  // The row names the URL devices fetch it from, and the file server serves
  // the uploaded bytes there.
  // (No [files] url is configured: the page shows the path on this host's
  // default file server port.)
  const shown = (await row.locator('code.wrap').textContent()).trim();
  assert.match(shown, /^http:\/\/127\.0\.0\.1:7567\/[0-9a-f]{16}\/fw-1\.0\.bin$/);
  const listed = (await stack.call(admin, 'GET', '/files')).json.files.find((f) => f.name === 'fw-1.0.bin');
  assert.ok(shown.endsWith(listed.url), `${shown} ends with ${listed.url}`);
  const served = await fetch(`${stack.filesBase}${listed.url}`);
  assert.equal(served.status, 200);
  assert.equal((await served.arrayBuffer()).byteLength, 300000);
  await shot(page, 'files');
  await page.getByRole('button', { name: 'Delete fw-1.0.bin' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete file' }).click();
  await until(async () => (await page.getByRole('row').filter({ hasText: 'fw-1.0.bin' }).count()) === 0, 'the file row to go');
  const list = await stack.call(admin, 'GET', '/files');
  assert.ok(!list.json.files.some((f) => f.name === 'fw-1.0.bin'));
  await page.context().close();
});

test('live events, overview charts, phone width and dark theme', async () => {
  const page = await loggedIn(b, stack, admin);
  await page.getByRole('link', { name: 'Live', exact: true }).click();
  await page.locator('.stream-state', { hasText: 'Connected' }).waitFor();
  const c = cpe('LIVE0001');
  await c.inform(['0 BOOTSTRAP', '1 BOOT']);
  await page.locator('ol.feed li[data-type="session"]', { hasText: 'LIVE0001' }).waitFor();
  await shot(page, 'live');

  await page.getByRole('link', { name: 'Overview', exact: true }).click();
  await page.locator('.card-value').first().waitFor();
  await until(async () => (await page.locator('figure.chart svg.line').count()) > 0, 'a line chart', 20000, 500);
  const cards = await page.locator('.card').allTextContents();
  assert.ok(cards.some((t) => /devices known/.test(t)), cards.join('|'));
  await shot(page, 'overview-admin');
  await page.context().close();

  const phone = await loggedIn(b, stack, admin, { viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
  const bg = await phone.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(246, 247, 249)', 'dark scheme applied');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 1, `no sideways scrolling on a phone (${overflow}px)`);
  await shot(phone, 'overview-phone-dark');
  await phone.goto(`${stack.base}/#/device/${encodeURIComponent(c.id)}`);
  await phone.getByRole('heading', { name: c.id, level: 1 }).waitFor();
  await shot(phone, 'device-phone-dark');
  noCspViolation(phone);
  await phone.context().close();
});
