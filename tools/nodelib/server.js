#!/usr/bin/env node
/*
 * Test peer: the independent LwM2M server `lwm2m-node-lib` (npm, Telefonica, pinned at 1.4.0),
 * driven over stdin/stdout with one JSON object per line.
 *
 *   node server.js [--port N] [--host 127.0.0.1] [--lifetime-check-ms 1000]
 *
 * --port 0 (the default) lets the OS pick a free UDP port; the port actually bound is reported in
 * the "ready" event.
 *
 * Events written to stdout:
 *   {"event":"ready","port":N,"host":"127.0.0.1"}
 *   {"event":"register","ep":..,"lifetime":..,"version":..,"binding":..,"payload":..,"id":..,
 *    "location":"rd/<id>","address":..,"port":..}
 *   {"event":"update","ep":..,"lifetime":..,"payload":..,"id":..,"address":..,"port":..}
 *   {"event":"unregister","ep":..,"id":..,"reason":"deregister"|"expired"}
 *   {"event":"notify","id":<observe command id>,"ep":..,"path":..,"value":..}
 *   {"event":"error","error":".."}            (uncaught errors inside the lib; the process goes on)
 *
 * Commands read from stdin ("timeout" is optional, in seconds, default 10):
 *   {"id":1,"op":"read","ep":"name","path":"/3/0/0"}
 *   {"id":2,"op":"write","ep":"name","path":"/1/0/1","value":"120"}
 *   {"id":3,"op":"execute","ep":"name","path":"/3/0/4"}            ("value" optional)
 *   {"id":4,"op":"observe","ep":"name","path":"/3/0/13"}
 *   {"id":5,"op":"cancel","ep":"name","path":"/3/0/13"}
 *   {"id":6,"op":"discover","ep":"name","path":"/3/0"}
 *   {"id":7,"op":"list"}
 *   {"id":8,"op":"ping"}
 * Each command is answered exactly once:
 *   {"id":1,"ok":true,"value":...}  or  {"id":1,"ok":false,"error":"...","code":"4.04"}
 * The process exits when stdin closes.
 */
'use strict';

const path = require('path');
const readline = require('readline');

// ---------------------------------------------------------------------------------------------
// arguments
function parseArgs(argv) {
    const out = { port: 0, host: '127.0.0.1', lifetimeCheckMs: 1000 };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) {
                throw new Error('missing value for ' + a);
            }
            return argv[++i];
        };
        if (a === '--port') {
            out.port = parseInt(next(), 10);
        } else if (a === '--host') {
            out.host = next();
        } else if (a === '--lifetime-check-ms') {
            out.lifetimeCheckMs = parseInt(next(), 10);
        } else {
            throw new Error('unknown argument ' + a);
        }
    }
    if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
        throw new Error('bad --port');
    }
    return out;
}

let args;
try {
    args = parseArgs(process.argv);
} catch (e) {
    process.stderr.write('server.js: ' + e.message + '\n');
    process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// output: one JSON object per line on stdout; nothing else may write to stdout
function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

// Resolve the modules exactly as lwm2m-node-lib itself resolves them, so the patches below hit
// the instances the lib uses.
const libMain = require.resolve('lwm2m-node-lib');
const libDir = path.join(path.dirname(libMain));           // .../lwm2m-node-lib/lib
const fromLib = (name) => require(require.resolve(name, { paths: [libDir] }));

const logops = fromLib('logops');
logops.setStream(process.stderr);     // the lib logs through logops, which defaults to stdout
logops.setLevel('FATAL');

const coap = fromLib('coap');
// The lib calls server.listen(port, cb) without an address, which binds 0.0.0.0.
// Bind it to the requested host instead (loopback in tests).
const origListen = coap.createServer.prototype.listen;
coap.createServer.prototype.listen = function (port, address, done) {
    if (typeof address === 'function' || address === undefined || address === null) {
        if (typeof address === 'function') {
            done = address;
        }
        address = args.host;
    }
    return origListen.call(this, port, address, done);
};

// The lib sends each of its requests from a fresh coap.Agent whose socket would bind 0.0.0.0 on
// first use; bind it to the same host first (Node queues sends until the bind completes).
const OrigAgent = coap.Agent;
function HostAgent(opts) {
    const agent = new OrigAgent(opts);
    if (!(opts && opts.socket) && agent._sock) {
        agent._sock.bind(0, args.host);
    }
    return agent;
}
HostAgent.prototype = OrigAgent.prototype;
coap.Agent = HostAgent;

const lwm2m = require('lwm2m-node-lib').server;
const srvCoapUtils = require(path.join(libDir, 'services', 'server', 'coapUtils'));

// ---------------------------------------------------------------------------------------------
// observe bookkeeping. The lib only tells the caller about an observation when the first
// notification *after* the Observe=0 response arrives (node-coap's ObserveReadStream drops
// Observe=0) and it never looks at the response code of the observe request. To answer the
// observe command promptly and with the real outcome, peek at the raw response here.
const observeHooks = {};   // key proxyUri + pathname -> function(err, res)

const origSendRequest = srvCoapUtils.sendRequest;
srvCoapUtils.sendRequest = function (request, callback) {
    if (request && request.observe) {
        const key = request.proxyUri + request.pathname;
        const hook = observeHooks[key];
        delete observeHooks[key];
        if (hook) {
            return origSendRequest(request, function (err, res) {
                try {
                    hook(err, res);
                } catch (e) {
                    process.stderr.write('observe hook: ' + e.stack + '\n');
                }
                // A non-observe answer (an error code) would leave the lib waiting forever on a
                // stream that has ended; stop the lib's chain there.
                if (err || !res || !hasObserve(res)) {
                    return;
                }
                callback(err, res);
            });
        }
    }
    return origSendRequest(request, callback);
};

function hasObserve(res) {
    return (res.options || []).some((o) => o.name === 'Observe');
}

// ---------------------------------------------------------------------------------------------
const config = {
    port: args.port,
    serverProtocol: 'udp4',
    ipProtocol: 'udp4',
    deviceRegistry: { type: 'memory' },
    defaultType: 'Device',
    types: [],
    lifetimeCheckInterval: args.lifetimeCheckMs,
    udpWindow: 100,
    logLevel: 'FATAL',
    formats: [
        { name: 'application-vnd-oma-lwm2m/text', value: 1541 },
        { name: 'application-vnd-oma-lwm2m/tlv', value: 1542 },
        { name: 'application-vnd-oma-lwm2m/json', value: 1543 },
        { name: 'application-vnd-oma-lwm2m/opaque', value: 1544 }
    ],
    writeFormat: 'application-vnd-oma-lwm2m/text',
    defaultAcceptFormat: 'text/plain'
};

let serverInfo = null;
const observations = {};   // "<ep> <path>" -> {cmdId, deviceId, parts}

function deviceView(d) {
    if (!d) {
        return d;
    }
    return {
        id: d.id,
        ep: d.name,
        lifetime: d.lifetime,
        address: d.address,
        port: d.port,
        path: d.path,
        type: d.type,
        creationDate: d.creationDate
    };
}

function registrationHandler(endpoint, lifetime, version, binding, payload, callback) {
    lwm2m.getDevice(endpoint, function (err, dev) {
        const orNull = (v) => (v === undefined ? null : v);
        const ev = {
            event: 'register', ep: endpoint, lifetime: orNull(lifetime), version: orNull(version),
            binding: orNull(binding), payload: orNull(payload)
        };
        if (!err && dev) {
            ev.id = dev.id;
            ev.location = 'rd/' + dev.id;
            ev.address = dev.address;
            ev.port = dev.port;
        }
        emit(ev);
        callback();
    });
}

function updateHandler(device, payload, callback) {
    emit({
        event: 'update', ep: device.name, lifetime: device.lifetime === undefined ? null : device.lifetime,
        payload: payload,
        id: device.id, address: device.address, port: device.port
    });
    callback();
}

function dropObservations(ep) {
    for (const k of Object.keys(observations)) {
        if (observations[k].ep === ep) {
            delete observations[k];
        }
    }
}

function unregistrationHandler(device, callback) {
    dropObservations(device.name);
    emit({ event: 'unregister', ep: device.name, id: device.id, reason: 'deregister' });
    callback();
}

function expiryHandler(device, callback) {
    dropObservations(device.name);
    emit({ event: 'unregister', ep: device.name, id: device.id, reason: 'expired' });
    if (callback) {
        callback();
    }
}

// ---------------------------------------------------------------------------------------------
// commands
function parsePath(p, minParts, maxParts) {
    if (typeof p !== 'string' || !/^(\/\d+)+$/.test(p)) {
        throw new Error('bad path ' + JSON.stringify(p) + ' (want /O/I/R)');
    }
    const parts = p.split('/').slice(1);
    if (parts.length < minParts || parts.length > maxParts) {
        throw new Error('path ' + p + ' not supported by lwm2m-node-lib for this operation' +
            ' (needs ' + (minParts === maxParts ? minParts : minParts + '..' + maxParts) + ' segments)');
    }
    return parts;
}

function errText(err) {
    if (!err) {
        return 'unknown error';
    }
    let s = (err.name ? err.name + ': ' : '') + (err.message || String(err));
    if (err.code && s.indexOf(String(err.code)) < 0) {
        s += ' (CoAP ' + err.code + ')';
    }
    return s;
}

function withDevice(ep, cb, done) {
    lwm2m.getDevice(ep, function (err, dev) {
        if (err || !dev) {
            return done(err || new Error('device ' + ep + ' not registered'));
        }
        cb(dev);
    });
}

function handleCommand(cmd, done) {
    const op = cmd.op;
    switch (op) {
    case 'ping':
        return done(null, 'pong');
    case 'list':
        return lwm2m.listDevices(function (err, devs) {
            done(err, (devs || []).map(deviceView));
        });
    case 'read': {
        const p = parsePath(cmd.path, 3, 3);
        return withDevice(cmd.ep, (dev) => lwm2m.read(dev.id, p[0], p[1], p[2], done), done);
    }
    case 'write': {
        const p = parsePath(cmd.path, 3, 3);
        if (cmd.value === undefined || cmd.value === null) {
            throw new Error('write needs a value');
        }
        return withDevice(cmd.ep,
            (dev) => lwm2m.write(dev.id, p[0], p[1], p[2], String(cmd.value), done), done);
    }
    case 'execute': {
        const p = parsePath(cmd.path, 3, 3);
        const v = (cmd.value === undefined || cmd.value === null) ? undefined : String(cmd.value);
        return withDevice(cmd.ep, (dev) => lwm2m.execute(dev.id, p[0], p[1], p[2], v, done), done);
    }
    case 'discover': {
        const p = parsePath(cmd.path, 1, 3);
        return withDevice(cmd.ep, function (dev) {
            const a = [dev.id].concat(p);
            a.push(done);
            lwm2m.discover.apply(null, a);
        }, done);
    }
    case 'observe': {
        const p = parsePath(cmd.path, 3, 3);
        return withDevice(cmd.ep, function (dev) {
            const key = cmd.ep + ' ' + cmd.path;
            const proxyUri = 'coap://' + dev.address + ':' + dev.port;
            const pathname = '/' + p.join('/');
            cmd._hookKey = proxyUri + pathname;
            observeHooks[cmd._hookKey] = cmd._hook = function (err, res) {
                if (cmd._timedOut) {
                    return;
                }
                if (err) {
                    return done(err);
                }
                if (res.code !== '2.05') {
                    return done({ name: 'ClientError', message: 'Error code received from the client: ' +
                        res.code, code: res.code });
                }
                if (!hasObserve(res)) {
                    return done({ name: 'ClientError', message: 'client answered 2.05 without an ' +
                        'Observe option (not observing)', code: res.code });
                }
                observations[key] = { cmdId: cmd.id, ep: cmd.ep, deviceId: dev.id, parts: p };
                done(null, res.payload ? res.payload.toString('utf8') : '');
            };
            const notify = function (value) {
                const o = observations[key];
                if (o && o.cmdId === cmd.id) {
                    emit({ event: 'notify', id: cmd.id, ep: cmd.ep, path: cmd.path, value: value });
                }
            };
            lwm2m.observe(dev.id, p[0], p[1], p[2],
                function (value) { notify(value); },
                function (err, first) {
                    // the lib resolves this with the first notification after Observe=0
                    if (!err) {
                        notify(first);
                    }
                });
        }, done);
    }
    case 'cancel': {
        const p = parsePath(cmd.path, 3, 3);
        return withDevice(cmd.ep, function (dev) {
            const key = cmd.ep + ' ' + cmd.path;
            delete observations[key];
            try {
                lwm2m.cancelObserver(dev.id, p[0], p[1], p[2], done);
            } catch (e) {
                done(new Error('no observation of ' + cmd.path + ' on ' + cmd.ep));
            }
        }, done);
    }
    default:
        throw new Error('unknown op ' + JSON.stringify(op));
    }
}

function runCommand(cmd) {
    const id = cmd.id;
    let answered = false;
    const timeoutS = (typeof cmd.timeout === 'number' && cmd.timeout > 0) ? cmd.timeout : 10;
    const answer = function (obj) {
        if (answered) {
            return;
        }
        answered = true;
        clearTimeout(timer);
        emit(Object.assign({ id: id }, obj));
    };
    const timer = setTimeout(function () {
        cmd._timedOut = true;
        if (cmd._hookKey && observeHooks[cmd._hookKey] === cmd._hook) {
            delete observeHooks[cmd._hookKey];   // an observe whose request never went out
        }
        answer({ ok: false, error: 'timeout after ' + timeoutS + ' s waiting for ' + cmd.op });
    }, timeoutS * 1000);
    const done = function (err, value) {
        if (err) {
            const a = { ok: false, error: errText(err) };
            if (err.code) {
                a.code = String(err.code);
            }
            answer(a);
        } else {
            answer({ ok: true, value: value === undefined ? null : value });
        }
    };
    try {
        if (!serverInfo) {
            throw new Error('server not started');
        }
        handleCommand(cmd, done);
    } catch (e) {
        done(e);
    }
}

// ---------------------------------------------------------------------------------------------
process.on('uncaughtException', function (e) {
    process.stderr.write('server.js uncaught: ' + (e && e.stack || e) + '\n');
    emit({ event: 'error', error: String(e && e.message || e) });
});

let stopping = false;
function shutdown(code) {
    if (stopping) {
        return;
    }
    stopping = true;
    const force = setTimeout(() => process.exit(code), 1000);
    force.unref();
    if (!serverInfo) {
        return process.exit(code);
    }
    try {
        lwm2m.stop(serverInfo, () => process.exit(code));
    } catch (e) {
        process.exit(code);
    }
}

lwm2m.start(config, function (err, info) {
    if (err) {
        process.stderr.write('server.js: start failed: ' + errText(err) + '\n');
        emit({ event: 'fatal', error: errText(err) });
        process.exit(1);
    }
    serverInfo = info;
    const bound = info.server._sock.address();
    // With --port 0 the lib still believes port 0: its own requests go to 127.0.0.1:<config.port>
    // (it proxies them through its server socket), so tell it the real one.
    config.port = bound.port;

    lwm2m.setHandler(info, 'registration', registrationHandler);
    lwm2m.setHandler(info, 'updateRegistration', updateHandler);
    lwm2m.setHandler(info, 'unregistration', unregistrationHandler);
    // setHandler('unregistration') restarts the lifetime check with an undefined interval
    // (config is read from the wrong object), i.e. every 1 ms; restart it properly.
    lwm2m.getRegistry().checkLifetime(config.lifetimeCheckInterval, expiryHandler);

    emit({ event: 'ready', port: bound.port, host: bound.address });

    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    rl.on('line', function (line) {
        line = line.trim();
        if (!line) {
            return;
        }
        let cmd;
        try {
            cmd = JSON.parse(line);
        } catch (e) {
            emit({ id: null, ok: false, error: 'bad JSON: ' + e.message });
            return;
        }
        if (!cmd || typeof cmd !== 'object') {
            emit({ id: null, ok: false, error: 'command must be a JSON object' });
            return;
        }
        runCommand(cmd);
    });
    rl.on('close', () => shutdown(0));
});

process.stdin.on('end', () => shutdown(0));
