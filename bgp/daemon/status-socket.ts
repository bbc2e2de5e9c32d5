/**
 * The daemon's unix status socket: one JSON request line in, one JSON reply line out.
 *   {"cmd":"status"}                    → SpeakerStatus
 *   {"cmd":"routes","prefix":"10.0.0.0/8"} → RouteEntry[]
 * The client half (queryStatusSocket) is what `tabbyctl bgp status/routes` calls.
 */
import net from 'node:net';
import { unlink } from 'node:fs/promises';
import { TabbyError, errorMessage } from '../../lib/errors.js';
import type { RouteEntry, SpeakerStatus } from '../speaker/status.js';

export type StatusRequest = { cmd: 'status' } | { cmd: 'routes'; prefix?: string };

export interface StatusProvider {
  status(): SpeakerStatus;
  routes(prefix?: string): RouteEntry[];
}

export class StatusSocketError extends TabbyError {
  constructor(message: string, hint: string, cause?: unknown) {
    super('BGP_STATUS_SOCKET', message, cause === undefined ? { hint } : { hint, cause });
  }
}

const MAX_REQUEST = 4096;

export async function serveStatusSocket(path: string, provider: StatusProvider): Promise<{ close(): Promise<void> }> {
  await unlink(path).catch(() => undefined);
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) return void sock.end(JSON.stringify({ error: 'request too large' }) + '\n');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: unknown;
      try {
        const req = JSON.parse(buf.slice(0, nl)) as StatusRequest;
        if (req.cmd === 'status') reply = { ok: true, status: provider.status() };
        else if (req.cmd === 'routes') reply = { ok: true, routes: provider.routes(req.prefix) };
        else reply = { ok: false, error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}` };
      } catch (err) {
        reply = { ok: false, error: errorMessage(err) };
      }
      sock.end(JSON.stringify(reply) + '\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        void unlink(path).catch(() => undefined);
      }),
  };
}

async function request(path: string, req: StatusRequest, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new StatusSocketError(`no answer on ${path}`, 'is tabby-bgp running and responsive?'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (c: string) => (buf += c));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new StatusSocketError(`cannot connect to ${path}: ${err.code ?? err.message}`, 'is tabby-bgp running? check statusSocket in its config', err));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(buf) as Record<string, unknown>;
        if (r.ok !== true) reject(new StatusSocketError(`tabby-bgp: ${String(r.error)}`, 'check the request'));
        else resolve(r);
      } catch (err) {
        reject(new StatusSocketError(`bad reply from ${path}`, 'is this a tabby-bgp status socket?', err));
      }
    });
  });
}

export async function queryStatus(path: string, timeoutMs = 5000): Promise<SpeakerStatus> {
  return (await request(path, { cmd: 'status' }, timeoutMs)).status as SpeakerStatus;
}

export async function queryRoutes(path: string, prefix?: string, timeoutMs = 5000): Promise<RouteEntry[]> {
  const req: StatusRequest = prefix === undefined ? { cmd: 'routes' } : { cmd: 'routes', prefix };
  return (await request(path, req, timeoutMs)).routes as RouteEntry[];
}
