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
  type Plugin,
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
  const answer = await client.request<{ nicks: string[] }>('chat/who');
  const nicks: string[] = answer.nicks;
  const uid: string = answer.requestUid;
  try {
    await client.request('site/test', { a: 1 }, { timeout: 1000 });
  } catch (error) {
    if (error instanceof CometError) console.log(error.code, error.route, ok, nicks, uid);
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

declare const io: unknown; // socket.io-client's
const viaSocketIo: Transport = new SocketIoTransport({
  io,
  transports: ['websocket'],
  auth: { token: 't' },
});
new Client({ transport: viaSocketIo });

void main();
