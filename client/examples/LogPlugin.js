/**
 * An example plugin: logs what the client does. A plugin is any object with an
 * `attach(client)` method; it listens to the client's events and may call its methods.
 *
 * ```js
 * import { Client } from 'comet-client';
 * import { LogPlugin } from 'comet-client/examples/LogPlugin.js';
 *
 * const client = new Client({ serverUrl, plugins: { log: new LogPlugin() } });
 * ```
 */
export class LogPlugin {
  /**
   * @param {object} [options]
   * @param {(line: string) => void} [options.log] where lines go; default `console.log`
   * @param {boolean} [options.frames] also log every frame both ways; default false
   */
  constructor({ log = console.log, frames = false } = {}) {
    this.log = log;
    this.frames = frames;
  }

  /** @param {import('../client.js').Client} client */
  attach(client) {
    client.on('open', ({ url }) => this.log(`comet: open ${url}`));
    client.on('close', ({ code, reason }) => this.log(`comet: closed ${code} ${reason}`.trim()));
    client.on('reconnecting', ({ attempt, delay }) =>
      this.log(`comet: retry ${attempt} in ${delay} ms`),
    );
    client.on('error', (error) => this.log(`comet: error ${error.code}: ${error.message}`));
    if (this.frames) {
      client.on('beforeSend', ({ message }) => this.log(`comet: → ${message}`));
      client.on('message', ({ message }) => this.log(`comet: ← ${message}`));
    }
  }
}
