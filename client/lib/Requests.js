/**
 * The client's action requests (and history and presence reads) waiting for their answer: each settles
 * exactly once, with the answer or with a {@link CometError} (error answer, timeout,
 * connection lost, cancelled).
 *
 * @module comet-client/lib/Requests
 */

import { ClientErrorCode, ErrorCode } from '../codes.js';
import { CometError } from './CometError.js';

/**
 * The requests of one client waiting for their answer, by `requestUid`: calls of an action
 * (`{ route }`) and reads of a channel's history or presence (`{ channel, read? }`), all answered by
 * `action {"requestUid":…}` frames.
 */
export class Requests {
  /** @type {Map<string, PendingRequest>} */
  #pending = new Map();

  /**
   * Waits for the answer to `requestUid`, for at most `timeout` ms (0 or Infinity: for
   * ever).
   *
   * @param {string} requestUid
   * @param {About} about the action's route, or the channel read
   * @param {number} timeout
   * @returns {Promise<object>}
   */
  add(requestUid, about, timeout) {
    return new Promise((resolve, reject) => {
      /** @type {PendingRequest} */
      const pending = { about, resolve, reject, timer: null, sent: false };
      this.#pending.set(requestUid, pending);
      if (timeout > 0 && Number.isFinite(timeout)) {
        pending.timer = setTimeout(() => {
          this.settle(requestUid, {
            error: new CometError(
              ErrorCode.TIMEOUT,
              `no answer to ${label(about)} within ${timeout} ms`,
              { ...about },
            ),
          });
        }, timeout);
      }
    });
  }

  /**
   * @param {string} requestUid
   * @returns {string | undefined} what it is, for a message (`"site/test"`, `the history of
   *   "chat"`), while it waits
   */
  describe(requestUid) {
    const pending = this.#pending.get(requestUid);
    return pending && label(pending.about);
  }

  /**
   * The request's frame is going out on the open connection.
   *
   * @param {string} requestUid
   * @returns {boolean} false when it settled meanwhile (timed out while queued): do not send
   */
  markSent(requestUid) {
    const pending = this.#pending.get(requestUid);
    if (!pending) return false;
    pending.sent = true;
    return true;
  }

  /**
   * Resolves or rejects a pending request, once.
   *
   * @param {string} requestUid
   * @param {{ answer?: object, error?: CometError }} outcome
   */
  settle(requestUid, { answer, error }) {
    const pending = this.#pending.get(requestUid);
    if (!pending) return;
    this.#pending.delete(requestUid);
    clearTimeout(pending.timer ?? undefined);
    if (error) pending.reject(error);
    else pending.resolve(/** @type {object} */ (answer));
  }

  /**
   * Rejects a request whose frame the client refused to send (too large, queue full),
   * naming its route (or its channel) in `error`.
   *
   * @param {string} requestUid
   * @param {CometError} error
   */
  refuse(requestUid, error) {
    const about = this.#pending.get(requestUid)?.about;
    error.route = about?.route;
    error.channel = about?.channel;
    this.settle(requestUid, { error });
  }

  /**
   * `close()` dropped the request's frame from the queue before it was sent.
   *
   * @param {string} requestUid
   */
  cancel(requestUid) {
    const about = this.#pending.get(requestUid)?.about;
    if (!about) return;
    this.settle(requestUid, {
      error: new CometError(
        ClientErrorCode.CANCELLED,
        `the client closed before ${label(about)} was sent`,
        { ...about },
      ),
    });
  }

  /**
   * The server's `action` answer: settles its request.
   *
   * @param {Record<string, any> | null} answer
   * @returns {{ about: About, error: CometError | undefined } | null} what was answered,
   *   or null for an answer to no waiting request
   */
  onAnswer(answer) {
    const requestUid = answer?.requestUid;
    const pending = this.#pending.get(requestUid);
    if (!answer || !pending) return null;
    const { about } = pending;
    const error = answer.error
      ? new CometError(
          String(answer.error.code ?? ErrorCode.INTERNAL),
          String(answer.error.message ?? `${label(about)} failed`),
          { ...about, response: answer },
        )
      : undefined;
    this.settle(requestUid, { answer, error });
    return { about, error };
  }

  /** The connection ended: the requests sent on it will get no answer. */
  connectionEnded() {
    for (const [requestUid, pending] of [...this.#pending]) {
      if (!pending.sent) continue;
      this.settle(requestUid, {
        error: new CometError(
          ClientErrorCode.DISCONNECTED,
          `the connection closed before ${label(pending.about)} was answered`,
          { ...pending.about },
        ),
      });
    }
  }
}

/**
 * What a request is: the call of an action `route`, or the read of something of `channel`:
 * its history (`read` left out), its `presence` or its `presence stats`.
 *
 * @typedef {{ route: string, channel?: undefined, read?: undefined }
 *   | { channel: string, route?: undefined, read?: 'history' | 'presence' | 'presence stats' }} About
 */

/**
 * @param {About} about
 * @returns {string} `"site/test"`, or `the history of "chat"`, `the presence of "room"`
 */
function label(about) {
  return about.route !== undefined
    ? `"${about.route}"`
    : `the ${about.read ?? 'history'} of "${about.channel}"`;
}

/**
 * @typedef {object} PendingRequest
 * @property {About} about
 * @property {(answer: object) => void} resolve
 * @property {(error: CometError) => void} reject
 * @property {ReturnType<typeof setTimeout> | null} timer
 * @property {boolean} sent whether the frame went out on the current connection
 */
