// Types of comet-client (client.js). The JSDoc in lib/ says the same at greater length.

/** A small event emitter; the client, the transports and plugins talk through it. */
export class Emitter {
  on(name: string, handler: (event: any) => void): this;
  once(name: string, handler: (event: any) => void): this;
  off(name: string, handler?: (event: any) => void): this;
  listenerCount(name: string): number;
  emit(name: string, event?: unknown): boolean;
}

/** What carries frames between the client and the server; write your own in this shape. */
export interface Transport {
  /** Opens a connection to the comet prefix URL; emits `open` once it is up. */
  open(serverUrl: string): void;
  /** Closes the connection; emits nothing more about it. */
  close(): void;
  /** Sends one text frame; called only while open. */
  send(text: string): void;
  /** `open`, `message` (the frame's text), `close` (a {@link CloseEvent}). */
  on(name: 'open' | 'message' | 'close', handler: (event: any) => void): unknown;
}

/** Extends the client: given it once, through `attach`. */
export interface Plugin {
  attach(client: Client): void;
}

export interface ClientOptions {
  /** The comet prefix URL, e.g. `http://127.0.0.1:4100/comet` or `/comet`; may hold `{workerIndex}`. Default: where client.js was served from. */
  serverUrl?: string;
  /** Default: a {@link WebSocketTransport}. */
  transport?: Transport;
  /** The WebSocket constructor for the default transport (e.g. the `ws` package in Node 20). */
  WebSocket?: unknown;
  /** Added to the default `{ autoReconnect: AutoReconnect }`; `null` or `false` removes one. */
  plugins?: Record<string, Plugin | (new () => Plugin) | null | false>;
  /** Open in the constructor. Default true. */
  autoOpen?: boolean;
  /** How many workers `{workerIndex}` picks from. */
  workersCount?: number | null;
  /** Renew subscriptions when a connection opens again. Default true. */
  autoSubscribeOnReconnect?: boolean;
  /** How long a request waits for its answer, in ms; 0 waits for ever. Default 30000. */
  requestTimeout?: number;
  /** How many frames may wait for the connection to open. Default 100. */
  maxQueuedFrames?: number;
  /** Ask the server for pings (`hello {"heartbeat":true}`) and reconnect a connection silent for its interval plus `heartbeatGrace`. Default true. */
  heartbeat?: boolean;
  /** ms; default max(5000, the server's interval / 2). */
  heartbeatGrace?: number | null;
  /** The frame limit in bytes until the server says its own (in its hello). Default 65536. */
  maxFrameBytes?: number;
  /** Sent as `auth <token>`, the first frame of every connection (never in the URL). It cannot be refreshed: prefer `getToken`. */
  token?: string;
  /** Called before each connection opens and on each `refresh` from the server; its token is sent as `auth <token>` (on the same connection for a refresh). */
  getToken?: () => string | Promise<string>;
}

/** A subscription token, or a function that gives a fresh one for each `subscribe` of the channel. */
export type SubscriptionToken = string | ((channel: string) => string | Promise<string>);

/** A place in a channel's history: after the publication `offset` of the history `epoch`. */
export interface Position {
  /** The offset of a publication (an integer that grows by one per publication in the channel). */
  offset: number;
  /** The history's epoch: it changes whenever the history was lost. */
  epoch: string;
}

export interface SubscribeOptions {
  /** Sent as `subscribe <channel> {"token":"…"}`, now and after each reconnection. */
  token?: SubscriptionToken;
  /**
   * Subscribe with positions (`subscribe <channel> {"recover":true}`): messages carry their
   * `offset`, `position(channel)` says where the channel stands, and each resubscription
   * after a reconnection resumes from there (`{"recover":true,"offset":N,"epoch":"E"}`).
   */
  recover?: boolean;
  /** With `recover: true`: the first subscribe resumes after this position (e.g. kept across a page reload); null for none. */
  since?: Position | null;
  /**
   * Ask for the channel's `join:<channel>` / `leave:<channel>` events
   * (`subscribe <channel> {"joinLeave":true}`), now and after each reconnection. The
   * namespace must have `join_leave`, else the subscribe is refused (`not_found`).
   */
  joinLeave?: boolean;
}

/** One connection in a channel (presence). */
export interface PresenceEntry {
  /** The server's id of the connection. */
  connection: string;
  /** The user id; null for an anonymous connection. */
  user: string | null;
  /** The `info` of the connection's token or authenticate hook; null when none. */
  info: unknown;
}

/** A `join` / `leave` event: one connection that joined or left `channel`. */
export interface PresenceEvent extends PresenceEntry {
  channel: string;
}

/** The answer of `presence()`: one entry per connection subscribed to the channel. */
export interface Presence {
  clients: Record<string, PresenceEntry>;
}

/** The answer of `presenceStats()`. */
export interface PresenceStats {
  /** Connections subscribed to the channel. */
  clients: number;
  /** Distinct users among them (anonymous connections count as clients only). */
  users: number;
}

export interface HistoryOptions {
  /** Publications after this offset (a position's offset is sent); without it, the newest `limit`. */
  since?: number | Position | null;
  /** At most this many publications. */
  limit?: number | null;
}

/** The answer of `history()`. */
export interface History {
  /** Oldest first, each shaped like a channel event, with its `offset`. */
  publications: PositionedChannelEvent[];
  /** The channel's position now (its last publication's offset, 0 if none). */
  offset: number;
  epoch: string;
}

/** Who the server says the connection is: its `authenticated` answer. */
export interface Identity {
  /** The user id; null for an anonymous connection. */
  user: string | null;
  /** When the token expires, in unix seconds; null without expiry. */
  exp: number | null;
  /** The server's id of this connection. */
  connection: string | null;
}

/** What the server said in answer to the client's `hello`. */
export interface ServerLimits {
  /** The server's heartbeat interval, in ms (0: it sends no pings). */
  heartbeat: number;
  /** The largest frame the server takes, in bytes. */
  maxFrameBytes: number;
  /** How many requests may wait for an answer at once. */
  maxPendingActions: number;
}

export interface CloseEvent {
  code: number | undefined;
  reason: string;
  wasClean: boolean;
}

export interface ChannelEvent {
  channel: string;
  /** The payload parsed, when it is a JSON object or array; else null. */
  params: any;
  /** The payload as text, when it is not JSON (jii's shape); else null. */
  message: string | null;
  /** The payload as text, always. */
  payload: string;
  /** The publication's offset in the channel's history: on channels subscribed with `recover`. */
  offset?: number;
}

/** A channel event with its offset (from a channel subscribed with `recover`, or `history()`). */
export interface PositionedChannelEvent extends ChannelEvent {
  offset: number;
}

/** After a resubscription with a position (each reconnection, a first subscribe with `since`), or a `gap`. */
export interface RecoveredEvent {
  channel: string;
  /** true: every missed message was delivered; false: some are lost, reload the state. */
  recovered: boolean;
}

export interface ClientEvents {
  open: { url: string };
  close: CloseEvent;
  message: { message: string };
  channel: ChannelEvent;
  beforeSend: { message: string };
  beforeRequest: { route: string; params: Record<string, unknown> };
  request: { route: string; params: Answer; error: CometError | undefined };
  error: CometError;
  disconnect: CloseEvent;
  reconnecting: { attempt: number; delay: number; code: number | undefined };
  authenticated: Identity;
  recovered: RecoveredEvent;
  join: PresenceEvent;
  leave: PresenceEvent;
  forceClose: undefined;
}

/** A server's answer to a request: the handler's object, with the `requestUid`. */
export type Answer = Record<string, any> & { requestUid: string };

export class Client extends Emitter {
  static readonly EVENT_OPEN: 'open';
  static readonly EVENT_CLOSE: 'close';
  static readonly EVENT_MESSAGE: 'message';
  static readonly EVENT_CHANNEL: 'channel';
  static readonly EVENT_CHANNEL_NAME: 'channel:';
  static readonly EVENT_BEFORE_SEND: 'beforeSend';
  static readonly EVENT_BEFORE_REQUEST: 'beforeRequest';
  static readonly EVENT_REQUEST: 'request';
  static readonly EVENT_ERROR: 'error';
  static readonly EVENT_RECOVERED: 'recovered';

  constructor(options?: ClientOptions);

  transport: Transport;
  plugins: Record<string, Plugin> & { autoReconnect?: AutoReconnect };
  workersCount: number | null;
  autoSubscribeOnReconnect: boolean;
  requestTimeout: number;
  maxQueuedFrames: number;
  heartbeat: boolean;
  heartbeatGrace: number | null;
  maxFrameBytes: number;
  serverLimits: ServerLimits | null;
  /** The user id of the last `authenticated` answer; null when anonymous or before one. */
  user: string | null;
  /** The last `authenticated` answer; null before one. */
  identity: Identity | null;
  readonly state: 'closed' | 'connecting' | 'open';

  setServerUrl(url: string): void;
  getServerUrl(): string;
  getStationUid(): string;
  isOpened(): boolean;
  isForceClosed(): boolean;
  open(): void;
  close(): void;
  /** Whether AutoReconnect should retry after a close with `code`: not 4100–4199, except 4102 with `getToken`. */
  shouldReconnect(code: number | undefined): boolean;

  on<K extends keyof ClientEvents>(name: K, handler: (event: ClientEvents[K]) => void): this;
  on(name: `channel:${string}`, handler: (event: ChannelEvent) => void): this;
  on(name: `join:${string}` | `leave:${string}`, handler: (event: PresenceEvent) => void): this;
  on(name: string, handler: (event: any) => void): this;
  once<K extends keyof ClientEvents>(name: K, handler: (event: ClientEvents[K]) => void): this;
  once(name: `channel:${string}`, handler: (event: ChannelEvent) => void): this;
  once(name: `join:${string}` | `leave:${string}`, handler: (event: PresenceEvent) => void): this;
  once(name: string, handler: (event: any) => void): this;
  off(name: string, handler?: (event: any) => void): this;
  hasChannelHandlers(channel: string): boolean;

  /** Resolves once the server confirmed (with `recover`: after the missed messages were delivered as events). */
  subscribe(channel: string, options?: SubscribeOptions): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Where a channel subscribed with `recover` stands (a copy); null while none is known or after `unsubscribe`. */
  position(channel: string): Position | null;
  /** Reads the channel's history (whoever may subscribe to it may read it); rejects with a CometError (`forbidden`, `not_found`, `unavailable`, …). */
  history(channel: string, options?: HistoryOptions): Promise<History>;
  /** Who is in the channel (a namespace with `presence`; whoever may subscribe to it may ask); rejects like `history()` (`not_found`: no presence there; `too_large`: too many entries to list, some 5,000 by default). */
  presence(channel: string): Promise<Presence>;
  /** How many connections and distinct users are in the channel, without the list; rejects like `presence()`. */
  presenceStats(channel: string): Promise<PresenceStats>;
  send(channel: string, data: unknown): boolean;
  request<T extends Record<string, any> = Record<string, any>>(
    route: string,
    params?: Record<string, unknown> | null,
    options?: { timeout?: number },
  ): Promise<T & { requestUid: string }>;
}

/** A failed request or subscription. */
export class CometError extends Error {
  constructor(
    code: string,
    message: string,
    details?: {
      route?: string;
      channel?: string;
      response?: object;
      closeCode?: number;
      reason?: string;
    },
  );
  readonly name: 'CometError';
  code: string;
  route: string | undefined;
  channel: string | undefined;
  response: object | undefined;
  /** The close code of a connection the server refused (4100–4199). */
  closeCode: number | undefined;
  /** The close reason that came with `closeCode`. */
  reason: string | undefined;
}

export class WebSocketTransport extends Emitter implements Transport {
  constructor(options?: { WebSocket?: unknown; path?: string });
  path: string;
  url(serverUrl: string): string;
  open(serverUrl: string): void;
  close(): void;
  send(text: string): void;
}

export class SockJsTransport extends Emitter implements Transport {
  constructor(options?: { SockJS?: unknown; transports?: string[]; sockjsOptions?: object });
  transports: string[] | undefined;
  sockjsOptions: object;
  url(serverUrl: string): string;
  open(serverUrl: string): void;
  close(): void;
  send(text: string): void;
}

export class SocketIoTransport extends Emitter implements Transport {
  constructor(options?: {
    io?: unknown;
    transports?: string[];
    path?: string;
    auth?: object;
    socketOptions?: object;
  });
  transports: string[] | undefined;
  path: string;
  auth: object | undefined;
  socketOptions: object;
  url(serverUrl: string): { origin: string; path: string };
  open(serverUrl: string): void;
  close(): void;
  send(text: string): void;
}

export class AutoReconnect implements Plugin {
  constructor(options?: {
    enable?: boolean;
    minRetryInterval?: number;
    maxRetryInterval?: number;
    random?: () => number;
  });
  enable: boolean;
  minRetryInterval: number;
  maxRetryInterval: number;
  attempt: number;
  client: Client | null;
  readonly isWaiting: boolean;
  attach(client: Client): void;
  delay(attempt: number): number;
}

export const ErrorCode: Readonly<{
  BAD_FRAME: 'bad_frame';
  BAD_JSON: 'bad_json';
  BAD_CHANNEL: 'bad_channel';
  BAD_ROUTE: 'bad_route';
  TOO_LARGE: 'too_large';
  NOT_FOUND: 'not_found';
  FORBIDDEN: 'forbidden';
  UNAUTHORIZED: 'unauthorized';
  NOT_AUTHENTICATED: 'not_authenticated';
  RATE_LIMITED: 'rate_limited';
  HANDLER_FAILED: 'handler_failed';
  TIMEOUT: 'timeout';
  UNAVAILABLE: 'unavailable';
  TOO_MANY_CHANNELS: 'too_many_channels';
  TOO_MANY_PENDING: 'too_many_pending';
  INTERNAL: 'internal';
  MESSAGES_DROPPED: 'messages_dropped';
}>;

export const ClientErrorCode: Readonly<{
  DISCONNECTED: 'disconnected';
  QUEUE_FULL: 'queue_full';
  CANCELLED: 'cancelled';
  CLOSED: 'closed';
  NO_TOKEN: 'no_token';
  CANNOT_REFRESH: 'cannot_refresh';
  TOKEN_EXPIRED: 'token_expired';
  AUTH_TIMEOUT: 'auth_timeout';
  REFUSED: 'refused';
}>;

export const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  INVALID_DATA: 1007;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  HEARTBEAT_TIMEOUT: 4000;
  SLOW_CONSUMER: 4001;
  RATE_LIMITED: 4002;
  TOO_MANY_CONNECTIONS: 4003;
  FORBIDDEN: 4100;
  UNAUTHORIZED: 4101;
  TOKEN_EXPIRED: 4102;
  AUTH_TIMEOUT: 4103;
}>;

export function shouldReconnect(code: number | undefined): boolean;
