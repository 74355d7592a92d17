/**
 * The wire protocol, client side: jii comet's text frames (and comet's extensions),
 * formatted and parsed in this one module. `actors/src/protocol/` is the server's half.
 *
 * | direction | frame |
 * | --- | --- |
 * | client → server | `subscribe <channel>` · `unsubscribe <channel>` |
 * | client → server | `channel <channel> <payload>` · `action <route> <json with requestUid>` |
 * | server → client | `channel <channel> <payload>` · `action <answer with requestUid>` |
 * | server → client | `error {"code","message","channel"?}` · `subscribed <channel>` · `unsubscribed <channel>` |
 * | client → server | `hello {"heartbeat":true}`: ask for `ping` frames |
 * | server → client | `hello {"heartbeat","max_frame_bytes","max_pending_actions"}` · `ping` |
 * | client → server | `auth <token>` (first on a connection, and again to refresh) · `subscribe <channel> {"token":…}` |
 * | server → client | `authenticated {"user","exp","connection"}` · `refresh {"exp","in"}` |
 * | client → server | `subscribe <channel> {"recover":true,"offset"?,"epoch"?}` · `history <channel> {"requestUid","since"?,"limit"?}` |
 * | server → client | `pub <channel> <offset> <payload>` · `subscribed <channel> {"offset","epoch","recovered"?}` · `gap <channel> {"offset","epoch"}` |
 * | client → server | `subscribe <channel> {"joinLeave":true}` · `presence <channel> {"requestUid"}` · `presence_stats <channel> {"requestUid"}` |
 * | server → client | `join <channel> [{"connection","user","info"},…]` · `leave <channel> [{"connection","user","info"},…]` |
 *
 * @module comet-client/lib/protocol
 */

/**
 * `subscribe <channel>`, or `subscribe <channel> <options as JSON>` when there are options
 * (e.g. `{"token":"<subscription token>"}`).
 *
 * @param {string} channel
 * @param {Record<string, unknown>} [options]
 */
export const subscribeFrame = (channel, options) =>
  options && Object.keys(options).length > 0
    ? `subscribe ${channel} ${JSON.stringify(options)}`
    : `subscribe ${channel}`;

/**
 * `auth <token>`: who the connection is, first on a connection and again to refresh.
 *
 * @param {string} token
 */
export const authFrame = (token) => `auth ${token}`;

/**
 * `history <channel> {"requestUid":…,"since"?:N,"limit"?:L}`: reads the channel's history
 * (publications after offset `since`; the newest `limit` without `since`).
 *
 * @param {string} channel
 * @param {{ requestUid: string, since?: number, limit?: number }} params
 */
export const historyFrame = (channel, params) => `history ${channel} ${JSON.stringify(params)}`;

/**
 * `presence <channel> {"requestUid":…}` (who is in the channel) or `presence_stats <channel>
 * {"requestUid":…}` (how many connections and users).
 *
 * @param {'presence' | 'presence_stats'} keyword
 * @param {string} channel
 * @param {string} requestUid
 */
export const presenceFrame = (keyword, channel, requestUid) =>
  `${keyword} ${channel} ${JSON.stringify({ requestUid })}`;

/** @param {string} channel */
export const unsubscribeFrame = (channel) => `unsubscribe ${channel}`;

/**
 * @param {string} channel
 * @param {string} payload any text
 */
export const channelFrame = (channel, payload) => `channel ${channel} ${payload}`;

/**
 * @param {string} route
 * @param {object} params a JSON object holding `requestUid`
 */
export const actionFrame = (route, params) => `action ${route} ${JSON.stringify(params)}`;

/**
 * The client's options for the server: `hello {"heartbeat":true}` asks for a `ping`
 * frame every heartbeat interval.
 *
 * @param {{ heartbeat: boolean }} options
 */
export const helloFrame = (options) => `hello ${JSON.stringify(options)}`;

/**
 * Whether `token` can go in an `auth` frame: a non-empty string without whitespace (the
 * server trims the frame's rest; a JWT has none).
 *
 * @param {unknown} token
 * @returns {token is string}
 */
export function isToken(token) {
  return typeof token === 'string' && token !== '' && !/\s/.test(token);
}

/**
 * Throws a TypeError for a channel name or route the server would refuse: empty, or with
 * whitespace (a space would split the frame).
 *
 * @param {'channel' | 'route'} what
 * @param {unknown} name
 */
export function checkName(what, name) {
  if (typeof name !== 'string' || name === '' || /\s/.test(name)) {
    throw new TypeError(
      `comet: a ${what} name is a non-empty string without spaces, not ${JSON.stringify(name)}`,
    );
  }
}

/**
 * A frame from the server, parsed. Broken JSON gives `body: null`; a frame whose keyword
 * is unknown gives `{ type: 'unknown' }` (for newer servers: ignore it).
 *
 * `subscribed` and `gap` carry the JSON object after the channel as `body` (`null` when
 * there is none, or it is broken); `pub` its offset as a number; `join` and `leave` the
 * JSON array after the channel as `entries` (a frame without one is `unknown`).
 *
 * @typedef {{ type: 'channel', channel: string, payload: string }
 *   | { type: 'pub', channel: string, offset: number, payload: string }
 *   | { type: 'action' | 'error' | 'hello' | 'authenticated' | 'refresh', body: Record<string, any> | null }
 *   | { type: 'ping' }
 *   | { type: 'subscribed' | 'gap', channel: string, body: Record<string, any> | null }
 *   | { type: 'unsubscribed', channel: string }
 *   | { type: 'join' | 'leave', channel: string, entries: unknown[] }
 *   | { type: 'unknown' }} ServerFrame
 */

/**
 * Parses one frame from the server.
 *
 * @param {string} text
 * @returns {ServerFrame}
 */
export function parseServerFrame(text) {
  const [keyword, rest] = splitOnce(text);
  switch (keyword) {
    case 'channel': {
      const [channel, payload] = splitOnce(rest ?? '');
      return payload === undefined ? { type: 'unknown' } : { type: 'channel', channel, payload };
    }
    case 'pub': {
      const [channel, afterChannel] = splitOnce(rest ?? '');
      const [digits, payload] = splitOnce(afterChannel ?? '');
      const offset = /^\d+$/.test(digits) ? readOffset(Number(digits)) : null;
      return payload === undefined || offset === null
        ? { type: 'unknown' }
        : { type: 'pub', channel, offset, payload };
    }
    case 'ping':
      return rest === undefined ? { type: 'ping' } : { type: 'unknown' };
    case 'action':
    case 'error':
    case 'hello':
    case 'authenticated':
    case 'refresh':
      return { type: keyword, body: parseObject(rest ?? '') };
    case 'subscribed':
    case 'gap': {
      const [channel, json] = splitOnce(rest ?? '');
      if (!channel || (keyword === 'gap' && json === undefined)) return { type: 'unknown' };
      return { type: keyword, channel, body: json === undefined ? null : parseObject(json) };
    }
    case 'unsubscribed':
      return rest ? { type: keyword, channel: rest } : { type: 'unknown' };
    case 'join':
    case 'leave': {
      const [channel, json] = splitOnce(rest ?? '');
      const entries = json === undefined ? null : parseJson(json);
      return channel && Array.isArray(entries)
        ? { type: keyword, channel, entries }
        : { type: 'unknown' };
    }
    default:
      return { type: 'unknown' };
  }
}

/**
 * A channel payload as jii gave it: `params` is the payload parsed when it is a JSON object
 * or array, else `null`, and then `message` is the text.
 *
 * @param {string} payload
 * @returns {{ params: any, message: string | null }}
 */
export function readPayload(payload) {
  const params = /^[{[]/.test(payload) ? parseJson(payload) : null;
  return { params, message: params === null ? payload : null };
}

/**
 * An offset: a non-negative integer (a safe one: offsets are counted in JS numbers).
 *
 * @param {unknown} value
 * @returns {number | null} the offset, or null when `value` is none
 */
export function readOffset(value) {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

/**
 * A channel's position in a frame's JSON body: `{"offset":N,"epoch":"E"}`.
 *
 * @param {Record<string, any> | null} body
 * @returns {{ offset: number, epoch: string } | null} null when the body holds none
 */
export function readPosition(body) {
  const offset = readOffset(body?.offset);
  const epoch = body?.epoch;
  return offset === null || typeof epoch !== 'string' ? null : { offset, epoch };
}

/** `"a b c"` → `["a", "b c"]`; `"a"` → `["a", undefined]`. */
function splitOnce(text) {
  const space = text.indexOf(' ');
  return space === -1 ? [text, undefined] : [text.slice(0, space), text.slice(space + 1)];
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function parseObject(text) {
  const value = parseJson(text);
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
}

/**
 * The length of `text` in UTF-8 bytes, as the server counts a frame, without encoding it.
 *
 * @param {string} text
 */
export function utf8Length(text) {
  let bytes = text.length;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a surrogate pair: 2 units, 4 bytes
        i += 1;
      } else {
        bytes += 2;
      }
    } else {
      bytes += 2; // 3 bytes (a lone surrogate goes out as U+FFFD, 3 bytes too)
    }
  }
  return bytes;
}
