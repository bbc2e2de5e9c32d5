// The "Node floor" agent of bench/mesh-reference.ts: the cheapest conceivable Node.js full-mesh member.
// No datastore, no BGP logic, no routes: it listens on <ip>:<port>, connects to every peer whose
// address is greater as a string (Calico's unidirectional mesh: the greater IP is passive), and per
// session does the BGP message sequence with dummy bodies of the real sizes:
//   send OPEN → on OPEN send KEEPALIVE → on KEEPALIVE send UPDATE → done when the peer's UPDATE arrived.
// Messages are framed like BGP (16-byte marker, u16 length, u8 type) so the reader does real framing.
// Prints to stdout (time = epoch ms with sub-ms precision, cpu = this process's CPU ms so far,
// refused = connection attempts refused so far):
//   ready <time> <cpu> <refused>    listening
//   first <time> <cpu> <refused>    the first session completed
//   done <time> <cpu> <refused>     all sessions completed
// then keeps its sockets open until killed (as a speaker would). Usage:
//   node _mesh-floor-agent.mjs <ip> <port> <peer-ip,peer-ip,…>
// Env: FLOOR_RETRY_MS (first connect retry, default 100), FLOOR_RETRY_MAX_MS (backoff cap, default 1000),
// FLOOR_CONNECT_DELAY_MS (wait before the first connect, default 0).
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';

const [ip = '', portArg = '179', peerArg = ''] = process.argv.slice(2);
const port = Number(portArg);
const peers = peerArg.split(',').filter((p) => p && p !== ip);
const retryMs = Number(process.env.FLOOR_RETRY_MS ?? 100);
const retryMaxMs = Number(process.env.FLOOR_RETRY_MAX_MS ?? 1000);
const connectDelay = Number(process.env.FLOOR_CONNECT_DELAY_MS ?? 0);
const OPEN = 1;
const UPDATE = 2;
const KEEPALIVE = 4;
/** OPEN with the capabilities a Calico speaker sends is ≈ 57 bytes; KEEPALIVE 19; one /26 UPDATE ≈ 60. */
const SIZE = { [OPEN]: 57, [UPDATE]: 60, [KEEPALIVE]: 19 };

const now = () => performance.timeOrigin + performance.now();
const cpuMs = () => {
  const u = process.cpuUsage();
  return ((u.user + u.system) / 1000).toFixed(1);
};
const say = (what) => process.stdout.write(`${what} ${now().toFixed(3)} ${cpuMs()} ${refused}\n`);

function message(type) {
  const b = Buffer.alloc(SIZE[type]);
  b.fill(0xff, 0, 16);
  b.writeUInt16BE(b.length, 16);
  b[18] = type;
  return b;
}

const done = new Set();
let refused = 0;
function complete(peer) {
  if (done.has(peer)) return;
  done.add(peer);
  if (done.size === 1) say('first');
  if (done.size === peers.length) say('done');
}

/** One session over `sock` with `peer`: OPEN → KEEPALIVE → UPDATE each way. */
function session(sock, peer) {
  let buf = Buffer.alloc(0);
  let sentUpdate = false;
  let gotUpdate = false;
  sock.setNoDelay(true);
  sock.write(message(OPEN));
  sock.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 19) {
      const len = buf.readUInt16BE(16);
      if (buf.length < len) break;
      const type = buf[18];
      buf = buf.subarray(len);
      if (type === OPEN) sock.write(message(KEEPALIVE));
      else if (type === KEEPALIVE && !sentUpdate) {
        sentUpdate = true;
        sock.write(message(UPDATE));
      } else if (type === UPDATE) gotUpdate = true;
      if (sentUpdate && gotUpdate) complete(peer);
    }
  });
  sock.on('error', (e) => process.stderr.write(`${peer}: ${e.message}\n`));
}

/**
 * Connect to `peer`; while it refuses (not started yet) retry after `wait` ms, doubling up to
 * retryMaxMs, with up to 25 % jitter (as BIRD's timers). Each refusal is a SYN, a RST and a socket.
 */
function connect(peer, wait = retryMs) {
  const sock = net.connect({ host: peer, port, localAddress: ip });
  sock.once('connect', () => session(sock, peer));
  sock.once('error', () => {
    sock.destroy();
    refused++;
    if (!done.has(peer)) setTimeout(() => connect(peer, Math.min(retryMaxMs, wait * 2)), wait * (1 - Math.random() / 4));
  });
}

const server = net.createServer((sock) => session(sock, sock.remoteAddress ?? '?'));
server.listen(port, ip, () => {
  say('ready');
  if (peers.length === 0) say('done');
  // FLOOR_CONNECT_DELAY_MS: BIRD's `connect delay time` (Calico: 2 s), with BIRD's jitter (up to −25 %).
  for (const p of peers) {
    if (p < ip) continue;
    if (connectDelay > 0) setTimeout(() => connect(p), connectDelay * (1 - Math.random() / 4));
    else connect(p);
  }
});
