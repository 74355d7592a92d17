/**
 * A `redis-server` of the test's own, on a free port (never the machine's 6379), without
 * persistence, or a Redis Cluster of three such nodes; for the tests that run the chat
 * demo as a cluster. `COMET_TEST_REDIS` says which the tests run on: `single`, `cluster`
 * or `both` (the default), as for the Rust tests.
 */

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

/** A port nobody listens on right now. */
async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** The modes `COMET_TEST_REDIS` asks for: `['single', 'cluster']` unless it says one. */
export function redisModes() {
  const wanted = process.env.COMET_TEST_REDIS || 'both';
  if (wanted === 'both') return ['single', 'cluster'];
  if (wanted === 'single' || wanted === 'cluster') return [wanted];
  throw new Error(`COMET_TEST_REDIS is single, cluster or both, not ${wanted}`);
}

/**
 * Starts a Redis of `mode` (`single` or `cluster`): resolves with the `cometd` flags that
 * put a process on it (`--redis URL` or `--redis-cluster URLS`) and a `stop`.
 *
 * @param {'single' | 'cluster'} mode
 * @returns {Promise<{ args: string[], stop: () => Promise<void> }>}
 */
export async function startRedisOf(mode) {
  if (mode === 'single') {
    const redis = await startRedis();
    return { args: ['--redis', redis.url], stop: redis.stop };
  }
  const cluster = await startRedisCluster(3);
  return { args: ['--redis-cluster', cluster.urls.join(',')], stop: cluster.stop };
}

/** Starts one `redis-server` with `args` (after its port); resolves once it is ready. */
async function launch(port, args) {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  const failed = exited.then(([code, signal]) => {
    throw new Error(`redis-server exited (${code ?? signal}): is it installed?`);
  });
  const ready = new Promise((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.includes('Ready to accept connections')) resolve();
    });
  });
  await Promise.race([ready, failed]);
  failed.catch(() => {});
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
}

/**
 * Starts redis-server and resolves once it accepts connections.
 *
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startRedis() {
  const port = await freePort();
  const stop = await launch(port, []);
  return { url: `redis://127.0.0.1:${port}/`, stop };
}

/**
 * Starts a Redis Cluster of `masters` nodes (no replicas), each with a fresh
 * `nodes.conf`, joined with `redis-cli --cluster create`; resolves once every node says
 * `cluster_state:ok`.
 *
 * @returns {Promise<{ urls: string[], stop: () => Promise<void> }>}
 */
export async function startRedisCluster(masters) {
  const dir = await mkdtemp(join(tmpdir(), 'comet-redis-cluster-'));
  const ports = [];
  const stops = [];
  const stop = async () => {
    await Promise.all(stops.map((each) => each()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i += 1) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      stops.push(
        await launch(port, [
          '--cluster-port',
          String(bus),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--cluster-require-full-coverage',
          'no',
          '--dir',
          dir,
        ]),
      );
    }
    const run = promisify(execFile);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    // The cluster settles in about 2 s: a state with no event to wait on.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const states = await Promise.all(
        ports.map((port) =>
          run('redis-cli', ['-p', String(port), 'cluster', 'info']).then(({ stdout }) => stdout),
        ),
      );
      if (states.every((info) => info.includes('cluster_state:ok'))) break;
      if (Date.now() > deadline) throw new Error('the test cluster did not reach cluster_state:ok');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { urls: ports.map((port) => `redis://127.0.0.1:${port}/`), stop };
}
