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
 *
 * @module comet-client/lib/protocol
 */

/** @param {string} channel */
export const subscribeFrame = (channel) => `subscribe ${channel}`;

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
 * @typedef {{ type: 'channel', channel: string, payload: string }
 *   | { type: 'action' | 'error' | 'hello', body: Record<string, any> | null }
 *   | { type: 'ping' }
 *   | { type: 'subscribed' | 'unsubscribed', channel: string }
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
    case 'ping':
      return rest === undefined ? { type: 'ping' } : { type: 'unknown' };
    case 'action':
    case 'error':
    case 'hello':
      return { type: keyword, body: parseObject(rest ?? '') };
    case 'subscribed':
    case 'unsubscribed':
      return rest ? { type: keyword, channel: rest } : { type: 'unknown' };
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
