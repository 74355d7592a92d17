// The admin page (`<prefix>/admin`) in headless Chromium (Debian's, driven by
// playwright-core), against two chat servers on a Redis of the test's own: a wrong
// password is refused; signed in, the page lists both processes, draws its charts, and
// a message published through its form reaches a WebSocket client on the other process.
// A screenshot of the page goes to `.tmp/browser/admin.png` (`admin-cluster.png` on a Redis Cluster).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import WebSocket from 'ws';

import { startChat, stopAllChats } from '../support/chatServer.js';
import { redisModes, startRedisOf } from '../support/redisServer.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS =
  process.env.COMET_SCREENSHOT_DIR ??
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '.tmp', 'browser');
const PASSWORD = 'admin page test password';

/** A raw WebSocket client that keeps every frame, and waits for one that fits. */
async function wsClient(url) {
  const socket = new WebSocket(url);
  const frames = [];
  const waiters = [];
  socket.on('message', (data) => {
    const frame = data.toString();
    frames.push(frame);
    for (const waiter of [...waiters]) {
      if (waiter.wanted(frame)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    }
  });
  await once(socket, 'open');
  return {
    send: (frame) => socket.send(frame),
    close: () => socket.close(),
    next(wanted, what) {
      const seen = frames.find(wanted);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no frame for ${what}`)), 15_000);
        waiters.push({
          wanted,
          resolve: (frame) => {
            clearTimeout(timer);
            resolve(frame);
          },
        });
      });
    },
  };
}

for (const mode of redisModes())
  describe(`the admin page in Chromium (Redis: ${mode})`, () => {
    let redis;
    let a;
    let b;
    let context;
    let profile;
    const pageErrors = [];

    before(async () => {
      if (!existsSync(CHROMIUM)) {
        throw new Error(
          `no Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium)`,
        );
      }
      await mkdir(SCREENSHOTS, { recursive: true });
      redis = await startRedisOf(mode);
      const args = [...redis.args, '--admin-password', PASSWORD, '--process-heartbeat-ms', '300'];
      a = await startChat({ args });
      b = await startChat({ args });
      profile = await mkdtemp(join(tmpdir(), 'comet-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run'],
        viewport: { width: 1000, height: 900 },
      });
    });

    after(async () => {
      await context?.close();
      await stopAllChats();
      await redis?.stop();
      if (profile) await rm(profile, { recursive: true, force: true });
    });

    it('signs in, shows both processes and live charts, and publishes', async () => {
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${a.cometUrl}/admin`);

      await page.locator('#secret').fill('not the password');
      await page.locator('#sign-in button').click();
      await page.locator('#sign-in-error', { hasText: 'wrong password or key' }).waitFor();
      assert.equal(await page.locator('#dashboard').isHidden(), true);

      await page.locator('#secret').fill(PASSWORD);
      await page.locator('#sign-in button').click();
      await page.locator('#dashboard').waitFor();
      // Both processes, from their heartbeats.
      await page.waitForFunction(
        () => document.querySelectorAll('#processes tbody tr').length === 2,
        null,
        {
          timeout: 15_000,
        },
      );

      // A client on B, subscribed; the page (on A) publishes to it.
      const client = await wsClient(`ws://127.0.0.1:${b.port}/comet/websocket`);
      client.send('subscribe admin-test');
      await client.next((f) => f === 'subscribed admin-test', 'subscribed');
      await page.locator('#publish-channel').fill('admin-test');
      await page.locator('#publish-data').fill('{"hello":"from the admin page"}');
      await page.locator('#publish button').click();
      await page.locator('#publish-result', { hasText: 'published to admin-test' }).waitFor();
      assert.equal(
        await client.next((f) => f.startsWith('channel admin-test '), 'the message'),
        'channel admin-test {"hello":"from the admin page"}',
      );

      // The busiest channels list the client's channel (cluster-wide), the charts have
      // points, and the connection shows in the connections chart's figure.
      await page
        .locator('#channels tbody tr td', { hasText: 'admin-test' })
        .waitFor({ timeout: 15_000 });
      await page.waitForFunction(
        () =>
          Number(document.querySelector('#rate-chart').dataset.points) >= 3 &&
          Number(document.querySelector('#connections-now').textContent) >= 1,
        null,
        { timeout: 15_000 },
      );
      const line = await page.locator('#connections-chart polyline').getAttribute('points');
      assert.ok(line.split(' ').length >= 3, `a drawn line: ${line}`);

      // Presence of a namespace without it: the page says so.
      await page.locator('#lookup-channel').fill('admin-test');
      await page.locator('#lookup button[name="presence"]').click();
      await page.locator('#lookup-result', { hasText: 'keeps no presence' }).waitFor();

      const shot = mode === 'single' ? 'admin.png' : `admin-${mode}.png`;
      await page.screenshot({ path: join(SCREENSHOTS, shot), fullPage: true });
      client.close();
      assert.deepEqual(pageErrors, []);
    });
  });
