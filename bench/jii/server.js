// The original jii comet server (npm jii@1.0.18), configured for comet-bench: a jii
// `Server` with its SockJS transport at /comet (whose raw WebSocket endpoint,
// /comet/websocket, speaks the same frames as comet's) and jii's default hub and queue,
// Redis, pointed at a Redis of the benchmark's own. Nothing here is part of comet.
//
//   npm ci && JII_PORT=4200 JII_REDIS_PORT=6392 node server.js
//
// Environment: JII_PORT (default 4200), JII_HOST (127.0.0.1), JII_REDIS_HOST
// (127.0.0.1), JII_REDIS_PORT (6379: give it a Redis of its own).
'use strict';

const Jii = require('jii');

// jii prints a TRACE line for every message while `debug` is on (its default): a
// production server turns it off.
Jii.debug = false;

const port = Number(process.env.JII_PORT || 4200);
const host = process.env.JII_HOST || '127.0.0.1';
const redis = {
    host: process.env.JII_REDIS_HOST || '127.0.0.1',
    port: Number(process.env.JII_REDIS_PORT || 6379),
};

Jii.createWebApplication({
    application: {
        basePath: __dirname,
        components: {
            comet: {
                className: require('jii/comet/server/Server'),
                host,
                port,
                hub: Object.assign({ className: require('jii/comet/server/hub/Redis') }, redis),
                queue: Object.assign({ className: require('jii/comet/server/queue/Redis') }, redis),
                transport: {
                    className: require('jii/comet/server/transport/Sockjs'),
                    urlPrefix: '/comet',
                },
            },
        },
    },
});

Jii.app.start().then(() => {
    // One line on stdout, for scripts: where it listens and which pid to measure.
    console.log(`jii comet listening on ws://${host}:${port}/comet/websocket (pid ${process.pid})`);
});
