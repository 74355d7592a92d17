/**
 * comet-client: the JavaScript client of comet, for browsers and Node.
 *
 * Plain ES modules, no build step: import this file from a page (a comet server serves it
 * at `<prefix>/client.js`) or from Node (`npm install` this folder).
 *
 * ```js
 * import { Client } from '/comet/client.js';
 * const client = new Client({ serverUrl: '/comet' });
 * client.on('channel:chat', ({ params }) => console.log(params));
 * ```
 *
 * @module comet-client
 */

export { Client } from './lib/Client.js';
export { CometError } from './lib/CometError.js';
export { Emitter } from './lib/Emitter.js';
export { WebSocketTransport } from './lib/WebSocketTransport.js';
export { SockJsTransport } from './lib/SockJsTransport.js';
export { SocketIoTransport } from './lib/SocketIoTransport.js';
export { AutoReconnect } from './lib/AutoReconnect.js';
export { ErrorCode, ClientErrorCode, CloseCode, shouldReconnect } from './codes.js';
