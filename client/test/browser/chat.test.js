// The chat demo page in headless Chromium (Debian's, driven by playwright-core): pages log
// in through the page's form, chat in the room and in private (a third page does not see
// the private message), a script in a page cannot forge a message, the server is killed
// and restarted (with a new random secret), the pages log in again by themselves,
// reconnect and chat on; a page whose network was down catches up with what was said
// meanwhile, once each and in order, and one that was down across a restart (which loses
// the in-memory history) says that it could not, and shows what the new server has; a
// reloaded page shows the recent history of the room and of its private conversations.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startChat, stopAllChats } from '../support/chatServer.js';
import { startTcpProxy } from '../support/tcpProxy.js';

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

  /**
   * Opens the chat page (from `url`, the server's by default) and logs in as `nick`
   * through its form, once it is in the room.
   */
  async function openChat(nick, url = server.url) {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${nick}: ${error.message}`));
    await page.goto(url);
    await page.locator('#login-nick').fill(nick);
    await page.locator('#login button').click();
    await page.locator('#status.online', { hasText: `online as ${nick}` }).waitFor();
    await page.locator('#who li.me', { hasText: new RegExp(`^${nick}$`) }).waitFor();
    return page;
  }

  /** Waits until `page` lists `nick` as here, with their private channel subscribed. */
  async function seesHere(page, nick) {
    await page.locator('#who li[data-dm="ready"]', { hasText: new RegExp(`^${nick}$`) }).waitFor();
  }

  async function say(page, text) {
    await page.locator('#text').fill(text);
    await page.locator('#text').press('Enter');
  }

  /** Waits until `page` shows a message line from `nick` saying `text`. */
  async function sees(page, nick, text) {
    await page.locator('#messages li', { hasText: `${nick}${text}` }).waitFor();
  }

  /** The lines `page` shows, in order (a message as `nick: text`). */
  async function lines(page) {
    return page.locator('#messages li').evaluateAll((items) =>
      items.map((li) => {
        const who = li.querySelector('b');
        return who
          ? `${who.textContent}: ${li.textContent.slice(who.textContent.length)}`
          : li.textContent;
      }),
    );
  }

  const LOST = 'some messages could not be recovered: the recent ones follow';

  it('refuses a bad nick at the login form', async () => {
    const page = await context.newPage();
    await page.goto(server.url);
    await page.locator('#login-nick').fill('no spaces, please');
    await page.locator('#login button').click();
    await page.locator('#login-error', { hasText: 'a nick is 1 to 32' }).waitFor();
    assert.equal(await page.locator('main').isVisible(), false);
    await page.close();
  });

  it('two pages chat, privately too, and keep chatting after the server is killed and restarted', async () => {
    const alice = await openChat('alice');
    const bob = await openChat('bob');
    await seesHere(alice, 'bob');
    await seesHere(bob, 'alice');

    await say(alice, 'hello from alice');
    await sees(bob, 'alice', 'hello from alice');
    await sees(alice, 'alice', 'hello from alice');
    await say(bob, 'hi alice');
    await sees(alice, 'bob', 'hi alice');

    // A private message: alice picks bob in the "to" list. Carol, also here, sees nothing.
    const carol = await openChat('carol');
    await seesHere(alice, 'carol');
    await alice.locator('#to').selectOption('bob');
    await say(alice, 'psst, bob');
    for (const page of [alice, bob]) {
      await page.locator('#messages li.dm', { hasText: 'alice → bobpsst, bob' }).waitFor();
    }
    await alice.locator('#to').selectOption('');
    await say(alice, 'back in the room');
    await sees(carol, 'alice', 'back in the room');
    await sees(bob, 'alice', 'back in the room');
    assert.equal(await carol.locator('#messages li.dm').count(), 0);
    assert.equal(await carol.locator('#messages li', { hasText: 'psst' }).count(), 0);

    // A script in carol's page, logged in as carol, cannot publish into the room (as
    // alice or anyone), and what it says through chat/say is signed `carol`.
    const forged = await carol.evaluate(async () => {
      const { Client } = await import('/comet/client.js');
      const login = await fetch('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nick: 'carol' }),
      });
      const { token } = await login.json();
      const client = new Client({ token });
      const refused = new Promise((resolve) => {
        client.on('error', (error) => {
          if (error.channel === 'chat:lobby') resolve(error.code);
        });
      });
      await client.subscribe('chat:lobby');
      client.send('chat:lobby', { type: 'message', nick: 'alice', text: 'forged by carol' });
      const code = await refused;
      await client.request('chat/say', { nick: 'alice', text: 'carol, honestly' });
      client.close();
      return code;
    });
    assert.equal(forged, 'forbidden');
    await sees(alice, 'carol', 'carol, honestly');
    assert.equal(await alice.locator('#messages li', { hasText: 'forged' }).count(), 0);
    await carol.close();
    await alice.locator('#messages li.event', { hasText: 'carol left' }).waitFor();
    await alice.locator('#who li', { hasText: /^carol$/ }).waitFor({ state: 'detached' });

    // Who is here lists users, not pages: bob opens a second page, and is still listed
    // once (with two pages); it closes, and bob stays, with one.
    const bobAgain = await openChat('bob');
    await alice.locator('#who li[data-tabs="2"]', { hasText: /^bob$/ }).waitFor();
    assert.equal(await alice.locator('#who li', { hasText: /^bob$/ }).count(), 1);
    await bobAgain.close();
    await alice.locator('#who li[data-tabs]', { hasText: /^bob$/ }).waitFor({ state: 'detached' });
    assert.equal(await alice.locator('#who li', { hasText: /^bob$/ }).count(), 1);
    assert.equal(await alice.locator('#messages li.event', { hasText: 'bob left' }).count(), 0);
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
      // The new process has none of the old history: the page says so.
      await page.locator('#messages li.event', { hasText: LOST }).waitFor();
    }
    // What was on screen before the restart stays there.
    await sees(alice, 'alice', 'hello from alice');
    // Each page logs in again at the new server (a new random secret: the old tokens are
    // no good there) and joins the room again.
    await seesHere(alice, 'bob');
    await seesHere(bob, 'alice');

    await say(bob, 'still here after the restart');
    await sees(alice, 'bob', 'still here after the restart');
    await say(alice, 'me too');
    await sees(bob, 'alice', 'me too');
    await alice.locator('#to').selectOption('bob');
    await say(alice, 'still private');
    await bob.locator('#messages li.dm', { hasText: 'alice → bobstill private' }).waitFor();
    await alice.screenshot({ path: join(SCREENSHOTS, '3-after-restart-alice.png') });

    assert.equal(await alice.locator('#error').textContent(), '');
    assert.deepEqual(pageErrors, []);
  });

  it('a page whose network was down catches up, or says that it could not', async () => {
    const proxy = await startTcpProxy(server.port);
    const viaProxy = `http://127.0.0.1:${proxy.port}/`;
    try {
      const dave = await openChat('dave', viaProxy);
      const erin = await openChat('erin');
      await say(erin, 'before the cut');
      await sees(dave, 'erin', 'before the cut');

      // Dave's network goes down; erin says three things meanwhile.
      proxy.cut();
      await dave.locator('#status.offline').waitFor();
      const missed = ['missed one', 'missed two', 'missed three'];
      for (const text of missed) {
        await say(erin, text);
        await sees(erin, 'erin', text);
      }
      assert.equal(await dave.locator('#messages li', { hasText: 'missed' }).count(), 0);

      // It comes back: dave's page gets them by itself, once each and in order.
      proxy.restore();
      await dave.locator('#status.online').waitFor();
      await sees(dave, 'erin', 'missed three');
      await say(erin, 'and one live');
      await sees(dave, 'erin', 'and one live');
      const said = (await lines(dave)).filter((line) => line.startsWith('erin: '));
      assert.deepEqual(said, [
        'erin: before the cut',
        'erin: missed one',
        'erin: missed two',
        'erin: missed three',
        'erin: and one live',
      ]);
      assert.equal(await dave.locator('#messages li.event', { hasText: LOST }).count(), 0);
      await dave.screenshot({ path: join(SCREENSHOTS, '4-caught-up-dave.png') });

      // Down again, across a restart of the server (its history is in memory: lost). Erin
      // says something on the new server before dave is back.
      proxy.cut();
      await dave.locator('#status.offline').waitFor();
      await server.stop('SIGKILL');
      server = await startChat({ port: server.port });
      await erin.locator('#status.online').waitFor();
      await say(erin, 'said after the restart');
      await sees(erin, 'erin', 'said after the restart');
      proxy.restore();
      // Dave cannot have what was lost, and says so; what the new server has, he gets.
      await dave.locator('#messages li.event', { hasText: LOST }).waitFor();
      await sees(dave, 'erin', 'said after the restart');
      const after = (await lines(dave)).slice(
        (await lines(dave)).findIndex((line) => line === LOST),
      );
      assert.deepEqual(
        after.filter((line) => line.startsWith('erin: ')),
        ['erin: said after the restart'],
      );
      await dave.screenshot({ path: join(SCREENSHOTS, '5-after-restart-dave.png') });

      // A private message, then dave reloads his page: a fresh page shows the recent
      // history of the room and of his conversations, each line once.
      await seesHere(erin, 'dave');
      await erin.locator('#to').selectOption('dave');
      await say(erin, 'a secret for dave');
      const secret = 'erin → dave: a secret for dave';
      await dave.locator('#messages li.dm', { hasText: 'erin → davea secret for dave' }).waitFor();
      await dave.reload();
      await dave.locator('#status.online', { hasText: 'online as dave' }).waitFor();
      await dave.locator('#messages li.dm', { hasText: 'erin → davea secret for dave' }).waitFor();
      await sees(dave, 'erin', 'said after the restart');
      const fresh = await lines(dave);
      assert.equal(fresh.filter((line) => line === secret).length, 1, fresh.join('\n'));
      assert.equal(
        fresh.filter((line) => line === 'erin: said after the restart').length,
        1,
        fresh.join('\n'),
      );
      await dave.screenshot({ path: join(SCREENSHOTS, '6-reloaded-dave.png') });
      assert.equal(await dave.locator('#error').textContent(), '');
      assert.deepEqual(pageErrors, []);
      await dave.close();
      await erin.close();
    } finally {
      await proxy.stop();
    }
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
