// Socket.IO 4.8 itself, with comet's model in Socket.IO events (docs/PROTOCOL.md,
// "Socket.IO"), so that comet-bench --transport socketio measures it as it measures comet:
//
//   node server.js [port]      (default 7410; path /comet/socket.io)
//
// subscribe → join the room, ack {channel}; unsubscribe → leave, ack {channel};
// channel → the room gets ("channel", channel, payload) with JSON text parsed once, as
// comet's clients get it; action → ack {echo: params}. Prints "socket.io listening on …".
'use strict';

const { createServer } = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 7410);
const httpServer = createServer();
const io = new Server(httpServer, {
  path: '/comet/socket.io',
  pingInterval: 25000,
  pingTimeout: 35000,
  maxHttpBufferSize: 1048576,
});

function parsed(payload) {
  if (typeof payload !== 'string') return payload;
  try {
    return JSON.parse(payload);
  } catch {
    return payload;
  }
}

io.on('connection', (socket) => {
  socket.on('subscribe', (channel, ...rest) => {
    const ack = rest.find((arg) => typeof arg === 'function');
    socket.join(channel);
    if (ack) ack({ channel });
  });
  socket.on('unsubscribe', (channel, ack) => {
    socket.leave(channel);
    if (typeof ack === 'function') ack({ channel });
  });
  socket.on('channel', (channel, payload) => {
    io.to(channel).emit('channel', channel, parsed(payload));
  });
  socket.on('action', (route, params, ack) => {
    if (typeof params === 'function') [params, ack] = [{}, params];
    if (typeof ack === 'function') ack({ echo: params ?? {} });
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`socket.io listening on http://127.0.0.1:${port}`);
});
