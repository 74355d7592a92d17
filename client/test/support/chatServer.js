/**
 * Runs the real Rust chat demo (`examples/chat`) for end-to-end tests: built once with
 * cargo, started on a free port, stopped gently (SIGTERM) or killed (SIGKILL).
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** How long a start may take before the test fails with the server's log. */
const START_TIMEOUT_MS = 30_000;

let built = null;

/**
 * Every server still running. A test that fails half-way may leave one behind: a file's
 * `after(stopAllChats)` and the process's exit make sure it does not outlive the tests.
 */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Kills every chat server this process started and waits until they are gone. */
export async function stopAllChats() {
  await Promise.all(
    [...running].map((child) => {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      return exited;
    }),
  );
}

/**
 * Builds the chat example (a no-op when it is up to date) and gives its executable's path.
 * `COMET_CHAT_BIN` names a prebuilt one instead.
 *
 * @returns {Promise<string>}
 */
export function buildChat() {
  if (process.env.COMET_CHAT_BIN) return Promise.resolve(process.env.COMET_CHAT_BIN);
  built ??= (async () => {
    const cargo = spawn(
      'cargo',
      ['build', '--quiet', '--workspace', '--example', 'chat', '--message-format=json'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let executable = null;
    for await (const line of createInterface({ input: cargo.stdout })) {
      const message = JSON.parse(line);
      if (message.reason === 'compiler-artifact' && message.target?.name === 'chat') {
        executable = message.executable;
      }
    }
    const [code] = await once(cargo, 'close');
    if (code !== 0 || !executable) {
      throw new Error(`cargo build --example chat failed (exit ${code})`);
    }
    return executable;
  })();
  return built;
}

/**
 * A running chat server.
 *
 * @typedef {object} ChatServer
 * @property {string} url the page URL, e.g. `http://127.0.0.1:41234/`
 * @property {string} cometUrl the comet prefix URL, e.g. `http://127.0.0.1:41234/comet`
 * @property {number} port
 * @property {(signal?: NodeJS.Signals) => Promise<void>} stop SIGTERM (the default: a
 *   graceful shutdown, clients get close code 1001) or SIGKILL (a crash); resolves once
 *   the process is gone
 * @property {() => Promise<void>} freeze stops the process (SIGSTOP) and resolves once it
 *   is stopped: it reads, answers and closes nothing any more, until killed
 */

/**
 * Starts the chat demo on `port` (0 picks a free one) and waits until it listens.
 *
 * @param {{ port?: number, args?: string[] }} [options] `args`: more flags, e.g.
 *   `['--redis', url]` for a process of a cluster
 * @returns {Promise<ChatServer>}
 */
export async function startChat({ port = 0, args = [] } = {}) {
  const executable = await buildChat();
  const child = spawn(executable, ['--bind', `127.0.0.1:${port}`, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  running.add(child);
  const exited = once(child, 'exit');
  exited.then(() => running.delete(child));
  const log = [];
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the chat server did not start in time; its log:\n${log.join('\n')}`));
    }, START_TIMEOUT_MS);
    createInterface({ input: child.stderr }).on('line', (line) => {
      log.push(line);
      const match = line.match(/chat demo on http:\/\/([\d.]+):(\d+)\//);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[2]));
      }
    });
    exited.then(([code, signal]) => {
      clearTimeout(timer);
      reject(new Error(`the chat server exited (${code ?? signal}); its log:\n${log.join('\n')}`));
    });
  });
  const boundPort = await listening;
  const url = `http://127.0.0.1:${boundPort}/`;
  return {
    url,
    cometUrl: `${url}comet`,
    port: boundPort,
    log,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    async freeze() {
      child.kill('SIGSTOP');
      await stopped(child.pid);
    },
  };
}

/**
 * Resolves once process `pid` is stopped (state `T` in `/proc/<pid>/stat`): a signal is
 * delivered when the kernel next schedules the process, not when `kill` returns.
 */
async function stopped(pid) {
  for (let i = 0; i < 500; i += 1) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) T /.test(stat)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`process ${pid} did not stop after SIGSTOP`);
}

/**
 * Logs `nick` in at the chat demo's login endpoint (`POST /login {"nick"}`).
 *
 * @param {{ url: string }} server a running chat server (its page URL)
 * @param {string} nick
 * @returns {Promise<{ status: number, body: any }>} the HTTP status and the JSON answer:
 *   `{ token, nick, exp }`, or `{ error: { code, message } }`
 */
export async function login(server, nick) {
  const response = await fetch(`${server.url}login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nick }),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * A `getToken()` for the JS client that logs `nick` in at `server` each time it is called.
 *
 * @param {{ url: string }} server
 * @param {string} nick
 * @returns {() => Promise<string>}
 */
export function tokensFor(server, nick) {
  return async () => {
    const { status, body } = await login(server, nick);
    if (status !== 200) throw new Error(`login as ${nick}: ${status} ${JSON.stringify(body)}`);
    return body.token;
  };
}
