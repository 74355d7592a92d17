// Compiled (never run) by `npm run test:types`: the types in client.d.ts fit real use.

import {
  AutoReconnect,
  Client,
  ClientErrorCode,
  CloseCode,
  CometError,
  ErrorCode,
  SockJsTransport,
  SocketIoTransport,
  WebSocketTransport,
  shouldReconnect,
  type History,
  type Presence,
  type PresenceEntry,
  type PresenceEvent,
  type PresenceStats,
  type Plugin,
  type Position,
  type Transport,
} from '../../client.js';

declare const WebSocket: unknown; // e.g. the 'ws' package's

const client = new Client({
  serverUrl: 'http://127.0.0.1:4100/comet',
  transport: new WebSocketTransport({ WebSocket }),
  plugins: { autoReconnect: new AutoReconnect({ minRetryInterval: 500 }) },
  requestTimeout: 10_000,
  heartbeatGrace: 5000,
  maxFrameBytes: 65536,
});

client.on('open', ({ url }) => url.toUpperCase());
client.on('close', ({ code }) => shouldReconnect(code));
client.on('channel:chat', ({ params, payload }) => [params, payload.length]);
client.on('reconnecting', ({ attempt, delay }) => attempt + delay);
client.on('error', (error) => error.code === ErrorCode.BAD_FRAME);
client.on('disconnect', ({ code, wasClean }) => code === CloseCode.HEARTBEAT_TIMEOUT && !wasClean);
client.on(
  'error',
  (error) => error.code === ErrorCode.TOO_LARGE || error.code === ClientErrorCode.CLOSED,
);
client.on('beforeRequest', (event) => {
  event.params.token = 'secret';
});

async function main(): Promise<void> {
  await client.subscribe('chat');
  const ok: boolean = client.send('chat', { text: 'hi' });
  const answer = await client.request<{ echo: { a: number } }>('site/test', { a: 1 });
  const echoed: number = answer.echo.a;
  const uid: string = answer.requestUid;
  try {
    await client.request('site/test', { a: 1 }, { timeout: 1000 });
  } catch (error) {
    if (error instanceof CometError) console.log(error.code, error.route, ok, echoed, uid);
  }
  const limit: number = client.serverLimits?.maxFrameBytes ?? client.maxFrameBytes;
  await client.request('site/test', null);
  console.log(limit);
  const attempt: number | undefined = client.plugins.autoReconnect?.attempt;
  console.log(attempt, CloseCode.GOING_AWAY, client.state);
  client.close();
}

class Counter implements Plugin {
  count = 0;
  attach(c: Client): void {
    c.on('message', () => (this.count += 1));
  }
}

const custom: Transport = new SockJsTransport({ transports: ['xhr-streaming'] });
new Client({ transport: custom, plugins: { counter: Counter, autoReconnect: false } });

const authed = new Client({
  serverUrl: '/comet',
  getToken: async () => (await fetch('/login', { method: 'POST' })).text(),
});
new Client({ token: 'eyJ.static.jwt' });
authed.on('authenticated', ({ user, exp, connection }) => [user?.length, exp, connection]);
authed.on('error', (error) => {
  if (error.closeCode === CloseCode.UNAUTHORIZED || error.code === ClientErrorCode.NO_TOKEN) {
    console.log(error.reason);
  }
});
const me: string | null = authed.user ?? authed.identity?.user ?? null;
void authed.subscribe('news:feed', { token: 'sub.jwt' });
void authed.subscribe('news:feed#42', { token: async (channel) => `token for ${channel}` });
console.log(me, authed.shouldReconnect(CloseCode.TOKEN_EXPIRED), ErrorCode.RATE_LIMITED);

// History and recovery.
async function feed(): Promise<void> {
  const stored = sessionStorage.getItem('feed-position');
  const since: Position | null = stored === null ? null : (JSON.parse(stored) as Position);
  const subscribed = client.subscribe('feed', { recover: true, since, token: 'sub.jwt' });
  client.on('channel:feed', ({ offset, params }) => console.log(offset?.toFixed(0), params));
  client.on('recovered', ({ channel, recovered }) => {
    if (!recovered) console.log(`reload ${channel}`);
  });
  await subscribed;
  const position = client.position('feed');
  if (position) sessionStorage.setItem('feed-position', JSON.stringify(position));
  const { publications, offset, epoch }: History = await client.history('feed', {
    since: position ?? 0,
    limit: 100,
  });
  const first: number | undefined = publications[0]?.offset;
  await client.history('feed', { limit: 10 });
  await client.history('feed');
  console.log(first, offset, epoch.length, Client.EVENT_RECOVERED);
}

void feed();

// Presence: who is in a room, who joins and leaves.
async function room(): Promise<void> {
  const here = new Map<string, PresenceEntry>();
  client.on('join:room:1', ({ connection, user, info, channel }: PresenceEvent) => {
    here.set(connection, { connection, user, info });
    console.log(channel.length, user?.toUpperCase());
  });
  client.on('leave:room:1', ({ connection }) => here.delete(connection));
  client.on('join', ({ channel, user }) => console.log(channel, user === null));
  client.once('leave', (event) => console.log(event.connection.length));
  await client.subscribe('room:1', { joinLeave: true, recover: true, token: 'sub.jwt' });
  const { clients }: Presence = await client.presence('room:1');
  for (const entry of Object.values(clients)) here.set(entry.connection, entry);
  const users = new Set([...here.values()].map((entry) => entry.user ?? entry.connection));
  const stats: PresenceStats = await client.presenceStats('room:1');
  console.log(users.size, stats.clients.toFixed(0), stats.users.toFixed(0));
}

void room();

declare const io: unknown; // socket.io-client's
const viaSocketIo: Transport = new SocketIoTransport({
  io,
  transports: ['websocket'],
  auth: { token: 't' },
});
new Client({ transport: viaSocketIo });

void main();
