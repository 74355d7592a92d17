/**
 * History, client side: the options of `history()` checked, and its answer read into
 * channel events; also the shape of a channel event, shared with the live messages.
 *
 * @module comet-client/lib/History
 */

import { ErrorCode } from '../codes.js';
import { CometError } from './CometError.js';
import { readOffset, readPayload, readPosition } from './protocol.js';

/**
 * A channel event: `{ channel, params, message, payload }` (jii's shape), and the
 * publication's `offset` when it has one.
 *
 * @param {string} channel
 * @param {string} payload
 * @param {number} [offset]
 */
export function channelEvent(channel, payload, offset) {
  const event = { channel, ...readPayload(payload), payload };
  return offset === undefined ? event : { ...event, offset };
}

/**
 * The parameters of a `history` frame, without its `requestUid`: `since` (an offset, or a
 * position's offset) and `limit`, each when given.
 *
 * @param {{ since?: unknown, limit?: unknown } | null | undefined} options
 * @returns {{ since?: number, limit?: number }}
 * @throws {TypeError} for a `since` or `limit` that is neither left out, null, nor valid
 */
export function historyParams(options) {
  const { since, limit } = options ?? {};
  /** @type {{ since?: number, limit?: number }} */
  const params = {};
  if (since !== undefined && since !== null) {
    const after = readOffset(typeof since === 'object' ? /** @type {any} */ (since).offset : since);
    if (after === null) {
      throw new TypeError(
        `comet: since is an offset or a position { offset, epoch }, not ${JSON.stringify(since)}`,
      );
    }
    params.since = after;
  }
  if (limit !== undefined && limit !== null) {
    const most = readOffset(limit);
    if (most === null) {
      throw new TypeError(`comet: limit is a non-negative integer, not ${JSON.stringify(limit)}`);
    }
    params.limit = most;
  }
  return params;
}

/**
 * The answer to `history`, for the app: `{ publications, offset, epoch }`, each publication
 * shaped like a channel event. Entries that are not `{ offset, payload }` are left out; an
 * answer without the channel's position is an `internal` error.
 *
 * @param {string} channel
 * @param {Record<string, any>} answer
 */
export function readHistory(channel, answer) {
  const entries = Array.isArray(answer.publications) ? answer.publications : [];
  const publications = [];
  for (const entry of entries) {
    const offset = readOffset(entry?.offset);
    if (offset === null || typeof entry.payload !== 'string') continue;
    publications.push(channelEvent(channel, entry.payload, offset));
  }
  const position = readPosition(answer);
  if (position === null) {
    throw new CometError(
      ErrorCode.INTERNAL,
      `the answer to the history of "${channel}" has no position ("offset", "epoch")`,
      { channel, response: answer },
    );
  }
  return { publications, ...position };
}
