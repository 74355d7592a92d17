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
  readonly state: 'closed' | 'connecting' | 'open';

  setServerUrl(url: string): void;
  getServerUrl(): string;
  getStationUid(): string;
  isOpened(): boolean;
  isForceClosed(): boolean;
  open(): void;
  close(): void;

  on<K extends keyof ClientEvents>(name: K, handler: (event: ClientEvents[K]) => void): this;
  on(name: `channel:${string}`, handler: (event: ChannelEvent) => void): this;
  on(name: string, handler: (event: any) => void): this;
  once<K extends keyof ClientEvents>(name: K, handler: (event: ClientEvents[K]) => void): this;
  once(name: `channel:${string}`, handler: (event: ChannelEvent) => void): this;
  once(name: string, handler: (event: any) => void): this;
  off(name: string, handler?: (event: any) => void): this;
  hasChannelHandlers(channel: string): boolean;

  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
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
    details?: { route?: string; channel?: string; response?: object },
  );
  readonly name: 'CometError';
  code: string;
  route: string | undefined;
  channel: string | undefined;
  response: object | undefined;
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
}>;

export const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  INVALID_DATA: 1007;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  HEARTBEAT_TIMEOUT: 4000;
  SLOW_CONSUMER: 4001;
  FORBIDDEN: 4100;
}>;

export function shouldReconnect(code: number | undefined): boolean;
