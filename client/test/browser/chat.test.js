// The chat demo page in headless Chromium (Debian's, driven by playwright-core): two pages
// chat, the server is killed and restarted, the pages reconnect and chat on.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startChat, stopAllChats } from '../support/chatServer.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Where the screenshots go, for a person to look at: `.tmp/browser/` in the repository. */
const SCREENSHOTS =
  process.env.COMET_SCREENSHOT_DIR ??
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '.tmp', 'browser');

describe('the chat page in Chromium', () => {
  let server;
  let context;
  let profile;
  const pageErrors = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `no Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) ` +
          'or set CHROMIUM to its path',
      );
    }
    await mkdir(SCREENSHOTS, { recursive: true });
    server = await startChat();
    profile = await mkdtemp(join(tmpdir(), 'comet-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 800, height: 420 },
    });
  });

  after(async () => {
    await context?.close();
    await stopAllChats();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  /** Opens the chat page as `nick`, once it is online and the nick is taken. */
  async function openChat(nick) {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${nick}: ${error.message}`));
    await page.goto(server.url);
    await page.locator('#status.online').waitFor();
    await page.locator('#nick').fill(nick);
    await page.locator('#nick').dispatchEvent('change');
    await page.locator('#who li', { hasText: new RegExp(`^${nick}$`) }).waitFor();
    return page;
  }

  async function say(page, text) {
    await page.locator('#text').fill(text);
    await page.locator('#text').press('Enter');
  }

  /** Waits until `page` shows a message line from `nick` saying `text`. */
  async function sees(page, nick, text) {
    await page.locator('#messages li', { hasText: `${nick}${text}` }).waitFor();
  }

  it('two pages chat, and keep chatting after the server is killed and restarted', async () => {
    const alice = await openChat('alice');
    const bob = await openChat('bob');
    await alice.locator('#who li', { hasText: /^bob$/ }).waitFor();

    await say(alice, 'hello from alice');
    await sees(bob, 'alice', 'hello from alice');
    await sees(alice, 'alice', 'hello from alice');
    await say(bob, 'hi alice');
    await sees(alice, 'bob', 'hi alice');
    await alice.screenshot({ path: join(SCREENSHOTS, '1-chatting-alice.png') });

    await server.stop('SIGKILL');
    for (const page of [alice, bob]) {
      await page.locator('#status.offline', { hasText: 'reconnecting in' }).waitFor();
    }
    await bob.screenshot({ path: join(SCREENSHOTS, '2-server-down-bob.png') });

    server = await startChat({ port: server.port });
    for (const page of [alice, bob]) {
      await page.locator('#status.online').waitFor();
      await page.locator('#messages li.event', { hasText: 'reconnected' }).waitFor();
    }
    // What was on screen before the restart stays there.
    await sees(alice, 'alice', 'hello from alice');
    // Each page claims its nick again on the new server.
    for (const page of [alice, bob]) {
      for (const nick of ['alice', 'bob']) {
        await page.locator('#who li', { hasText: new RegExp(`^${nick}$`) }).waitFor();
      }
    }

    await say(bob, 'still here after the restart');
    await sees(alice, 'bob', 'still here after the restart');
    await say(alice, 'me too');
    await sees(bob, 'alice', 'me too');
    await alice.screenshot({ path: join(SCREENSHOTS, '3-after-restart-alice.png') });

    assert.equal(await alice.locator('#error').textContent(), '');
    assert.deepEqual(pageErrors, []);
  });

  it('connects by default to the server it was loaded from', async () => {
    const page = await context.newPage();
    await page.goto(server.url);
    const answer = await page.evaluate(async () => {
      const { Client } = await import('/comet/client.js');
      const client = new Client();
      const echo = await client.request('site/test', { from: 'default serverUrl' });
      client.close();
      return { serverUrl: client.getServerUrl(), echo: echo.echo };
    });
    assert.deepEqual(answer, {
      serverUrl: `${server.cometUrl}/`,
      echo: { from: 'default serverUrl' },
    });
    await page.close();
  });
});
