/**
 * The error codes and close codes of comet, mirroring `actors/src/codes.rs` on the server
 * (a Rust test checks that both files name the same codes).
 *
 * Error codes travel in `action {"requestUid":…,"error":{"code":…}}` answers and in
 * `error {"code":…}` frames; the client adds a few of its own for failures that never
 * reach the server. Close codes end a connection: below 4000 they are the WebSocket
 * standard ones, 4000–4099 say "reconnect", 4100–4199 say "do not reconnect".
 *
 * @module comet-client/codes
 */

/**
 * Error codes sent by the server. Action handlers may answer codes of their own (such as
 * the chat demo's `nick_taken`): branch on these, pass the others through.
 */
export const ErrorCode = Object.freeze({
  /** The frame is empty, has an unknown keyword, or misses a part. */
  BAD_FRAME: 'bad_frame',
  /** The JSON of an `action` frame does not parse, or is not an object. */
  BAD_JSON: 'bad_json',
  /** The channel name is empty, too long, or holds a space or a control character. */
  BAD_CHANNEL: 'bad_channel',
  /** The route is empty, too long, or holds a space or a control character. */
  BAD_ROUTE: 'bad_route',
  /** The frame is larger than the server's `max_frame_bytes`. */
  TOO_LARGE: 'too_large',
  /** No process serves this action route. */
  NOT_FOUND: 'not_found',
  /**
   * The connection may not do this: a subscribe or publish refused by a permission (the
   * `error` frame names the `channel`; no `subscribed` follows).
   */
  FORBIDDEN: 'forbidden',
  /**
   * An `auth` frame whose token failed, on a connection that is already authenticated (a
   * failed refresh): the connection keeps its old identity until that expires.
   */
  UNAUTHORIZED: 'unauthorized',
  /** The action route needs an authenticated caller. */
  NOT_AUTHENTICATED: 'not_authenticated',
  /**
   * Over a per-connection rate limit (publishes, subscribes or actions per second): the
   * frame was dropped, the connection lives on.
   */
  RATE_LIMITED: 'rate_limited',
  /** The action handler failed. */
  HANDLER_FAILED: 'handler_failed',
  /** No answer in time (from the server's `action_timeout`, or the client's `requestTimeout`). */
  TIMEOUT: 'timeout',
  /** The hub or the queue could not be reached; try again later. */
  UNAVAILABLE: 'unavailable',
  /** The connection already holds the most subscriptions the server allows. */
  TOO_MANY_CHANNELS: 'too_many_channels',
  /** The connection already waits for the most answers the server allows. */
  TOO_MANY_PENDING: 'too_many_pending',
  /** A bug on the server's side; its log has the details. */
  INTERNAL: 'internal',
  /**
   * The client read too slowly and the server dropped frames queued for it, oldest first
   * (the server's `drop-oldest` slow-consumer policy); the frame says how many (`dropped`).
   */
  MESSAGES_DROPPED: 'messages_dropped',
});

/** Error codes made by the client itself, for failures the server never saw. */
export const ClientErrorCode = Object.freeze({
  /** The connection closed after the request was sent and before its answer came. */
  DISCONNECTED: 'disconnected',
  /** The client was not connected and its queue of frames waiting to be sent was full. */
  QUEUE_FULL: 'queue_full',
  /** The app gave up on it: `close()` dropped a queued request, `unsubscribe()` a pending subscribe. */
  CANCELLED: 'cancelled',
  /** The app called `close()` (and not `open()` since): requests and sends are refused. */
  CLOSED: 'closed',
  /** `getToken()` threw, rejected, or gave something other than a non-empty string. */
  NO_TOKEN: 'no_token',
  /**
   * The server asked for a fresh token (`refresh`) but the client has no `getToken()` to
   * get one (only a static `token`): the server closes with 4102 once the token expires.
   */
  CANNOT_REFRESH: 'cannot_refresh',
  /** Close code 4102: the token expired (said only when there is no `getToken()`). */
  TOKEN_EXPIRED: 'token_expired',
  /** Close code 4103: the client sent no `auth` in the server's `auth_timeout`. */
  AUTH_TIMEOUT: 'auth_timeout',
  /** Another close code in 4100–4199 (refused for good), without a name of its own. */
  REFUSED: 'refused',
});

/** Close codes a server sends when it ends a connection. */
export const CloseCode = Object.freeze({
  /** Closed on purpose (by the server's `disconnect`, or because the client asked). */
  NORMAL: 1000,
  /** The server process is shutting down: reconnect, a balancer sends you elsewhere. */
  GOING_AWAY: 1001,
  /** A text message was not valid UTF-8. */
  INVALID_DATA: 1007,
  /** A frame exceeded the transport's hard size cap. */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected failure on the server. */
  INTERNAL_ERROR: 1011,
  /**
   * The client sent nothing (not even a pong) for the server's `client_timeout`; also the
   * code of the `close` the client says itself when the server sent nothing (not even a
   * `ping`) for its heartbeat interval plus the grace.
   */
  HEARTBEAT_TIMEOUT: 4000,
  /** The client read too slowly and its outbound queue on the server filled up. */
  SLOW_CONSUMER: 4001,
  /** "Rate limit exceeded": the client kept flooding past its rate limits; reconnect after a back-off. */
  RATE_LIMITED: 4002,
  /** "Too many connections": over the per-ip connection limits; reconnect later. */
  TOO_MANY_CONNECTIONS: 4003,
  /**
   * "Forbidden": the server refuses this connection for good (an authenticate hook
   * refused, the origin is not allowed); reconnecting will not help.
   */
  FORBIDDEN: 4100,
  /**
   * "Unauthorized": authentication is required and the token is missing or invalid (bad
   * signature, wrong algorithm, malformed, anonymous not allowed), or a frame other than
   * `auth` came first.
   */
  UNAUTHORIZED: 4101,
  /**
   * "Token expired": at connect, or no valid `auth` by the token's `exp` plus the grace.
   * The one 41xx after which reconnecting is right, with a NEW token (the client does so
   * when it has `getToken()`).
   */
  TOKEN_EXPIRED: 4102,
  /** "Authentication timeout": no `auth` within the server's `auth_timeout` (default 10 s). */
  AUTH_TIMEOUT: 4103,
});

/**
 * Whether a client should reconnect after a connection closed with `code`, as it is
 * (with the same token): every code except the "do not reconnect" range 4100–4199.
 * After 4102 (token expired) reconnecting is right only with a new token: the client's
 * AutoReconnect does so when the client has `getToken()`.
 *
 * @param {number | undefined} code
 * @returns {boolean}
 */
export function shouldReconnect(code) {
  return !(typeof code === 'number' && code >= 4100 && code <= 4199);
}
