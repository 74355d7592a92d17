/**
 * The client's watch over a quiet connection: the server's `ping` frames (asked for with
 * `hello {"heartbeat":true}`) or any other frame must keep coming.
 *
 * @module comet-client/lib/Heartbeat
 */

/**
 * How long after the server's heartbeat interval a silent connection counts as dead, by
 * default: half the interval, at least 5 s (a ping may queue behind a burst of frames).
 *
 * @param {number} heartbeat the server's heartbeat interval, in ms
 */
export const defaultHeartbeatGrace = (heartbeat) => Math.max(5000, heartbeat / 2);

/**
 * A watchdog over one connection at a time: once started, it calls `onSilent(ms)` when
 * nothing was {@link received} for `timeout` ms. A network path can die without a word (the
 * socket stays "open"), and browsers show scripts neither WebSocket pings nor SockJS `h`
 * frames, so this is how the client finds out.
 */
export class Heartbeat {
  /** `Date.now()` when the last frame arrived. */
  #lastReceived = 0;
  /** @type {ReturnType<typeof setTimeout> | null} */
  #timer = null;
  /** @type {(silentMs: number) => void} */
  #onSilent;

  /** @param {(silentMs: number) => void} onSilent called once the connection went silent */
  constructor(onSilent) {
    this.#onSilent = onSilent;
  }

  /** Something arrived: the connection is alive now. */
  received() {
    this.#lastReceived = Date.now();
  }

  /**
   * Watches the open connection: it counts as dead once nothing arrived for `timeout` ms.
   *
   * @param {number} timeout
   */
  start(timeout) {
    this.stop();
    const check = () => {
      const silent = Date.now() - this.#lastReceived;
      if (silent < timeout) {
        this.#timer = setTimeout(check, timeout - silent);
        return;
      }
      this.#timer = null;
      this.#onSilent(silent);
    };
    this.#timer = setTimeout(check, timeout);
  }

  /** Stops watching (the connection ended). */
  stop() {
    clearTimeout(this.#timer ?? undefined);
    this.#timer = null;
  }
}
