/**
 * Presence, client side: who is in a channel (`presence()`), how many (`presenceStats()`),
 * and who joins and leaves it (`join` / `leave` frames to a subscription made with
 * `{ joinLeave: true }`). The server's answers and frames are read here, into the shapes
 * the app gets; the requests go out through the client like `history()`.
 *
 * @module comet-client/lib/Presence
 */

import { ErrorCode } from '../codes.js';
import { CometError } from './CometError.js';

/**
 * One connection in a channel: its id, its user (`null` when anonymous) and the `info` of
 * its token or authenticate hook (`null` when none).
 *
 * @typedef {{ connection: string, user: string | null, info: unknown }} PresenceEntry
 */

/**
 * A `join` or `leave` event: one entry, and the channel it joined or left.
 *
 * @typedef {PresenceEntry & { channel: string }} PresenceEvent
 */

/**
 * An entry from the server, checked: `{ connection, user, info }` with a non-empty
 * `connection` and a string or null `user`; a missing `user` or `info` is null.
 *
 * @param {unknown} value
 * @returns {PresenceEntry | null} null when `value` is not an entry
 */
export function readEntry(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const { connection, user = null, info = null } = /** @type {Record<string, any>} */ (value);
  if (typeof connection !== 'string' || connection === '') return null;
  if (user !== null && typeof user !== 'string') return null;
  return { connection, user, info };
}

/**
 * The answer to `presence`, for the app: `{ clients: { <connection id>: entry } }`.
 * Entries that are not `{ connection, user, info }` are left out; an answer without a
 * `clients` object is an `internal` error.
 *
 * @param {string} channel
 * @param {Record<string, any>} answer
 * @returns {{ clients: Record<string, PresenceEntry> }}
 */
export function readPresence(channel, answer) {
  const clients = answer?.clients;
  if (clients === null || typeof clients !== 'object' || Array.isArray(clients)) {
    throw broken(channel, 'presence', answer, '"clients" is not an object');
  }
  const entries = [];
  for (const [id, value] of Object.entries(clients)) {
    const entry = readEntry(value);
    if (entry !== null) entries.push([id, entry]);
  }
  // fromEntries defines own properties: even a key `__proto__` stays a key.
  return { clients: Object.fromEntries(entries) };
}

/**
 * The answer to `presence_stats`, for the app: `{ clients, users }`, both counts; an answer
 * without them is an `internal` error.
 *
 * @param {string} channel
 * @param {Record<string, any>} answer
 * @returns {{ clients: number, users: number }}
 */
export function readPresenceStats(channel, answer) {
  const { clients, users } = answer ?? {};
  if (!isCount(clients) || !isCount(users)) {
    throw broken(channel, 'presence stats', answer, 'its "clients" and "users" are not counts');
  }
  return { clients, users };
}

/**
 * Says a `join` or `leave` frame: for each entry in it, `<type>:<channel>` and then
 * `<type>`, each with `{ channel, connection, user, info }`. A frame carries several
 * entries when the server coalesced them; what is not an entry is skipped.
 *
 * @param {{ emit(name: string, event: unknown): unknown }} emitter the client
 * @param {'join' | 'leave'} type
 * @param {string} channel
 * @param {unknown[]} entries
 */
export function emitJoinLeave(emitter, type, channel, entries) {
  for (const value of entries) {
    const entry = readEntry(value);
    if (entry === null) continue;
    /** @type {PresenceEvent} */
    const event = { channel, ...entry };
    emitter.emit(`${type}:${channel}`, event);
    emitter.emit(type, event);
  }
}

/** @param {unknown} value @returns {value is number} */
function isCount(value) {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function broken(channel, what, answer, why) {
  return new CometError(
    ErrorCode.INTERNAL,
    `the answer to the ${what} of "${channel}" is broken: ${why}`,
    { channel, response: answer },
  );
}
