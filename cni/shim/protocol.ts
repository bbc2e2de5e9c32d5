/**
 * The line protocol between the `tabby` shim (a POSIX sh script the runtime execs) and tabby-node's
 * CNI server on `<run_dir>/cni.sock`. Pure: bytes in, objects out. Simple enough for `sh` + `socat`:
 *
 *   request  = "TABBYCNI/1\n" *( "E " NAME "=" VALUE "\n" | "M " key "=" value "\n" ) "\n" stdin-bytes
 *   reply    = exit-code "\n" plugin-stdout        (exit-code: decimal; stdout: what the plugin prints)
 *            | "fallback " reason "\n"              (the shim then runs the Node plugin itself)
 *
 * `E` lines carry the environment the plugin honours (FORWARDED_ENV), `M` lines facts about the
 * caller: `self` (the shim's path, for the in-process tabby-ipam check) and `netns` (`<dev>:<ino>` of
 * CNI_NETNS as the shim sees it, so the server never acts on a different file with the same path).
 * Values never contain a newline (the shim falls back instead of sending one). The request ends
 * when the client half-closes.
 */
import { TabbyError } from '../../lib/errors.js';

export const SHIM_PROTOCOL = 'TABBYCNI/1';
export const CNI_SOCKET_NAME = 'cni.sock';
export const DEFAULT_RUN_DIR = '/var/run/tabby';
/** Bound on a request (config + prevResult are a few KiB). */
export const MAX_REQUEST_BYTES = 1 << 20;

/**
 * Environment the plugin (and its in-process tabby-ipam and datastore code) honours; the shim sends
 * exactly these when set. PATH so exec'd delegates (node launchers) resolve as from the runtime.
 */
export const FORWARDED_ENV = [
  'CNI_COMMAND',
  'CNI_CONTAINERID',
  'CNI_NETNS',
  'CNI_IFNAME',
  'CNI_ARGS',
  'CNI_PATH',
  'PATH',
  'NODENAME',
  'TABBY_LIB_DIR',
  'TABBY_RUN_DIR',
  'TABBY_CNI_SERVER',
  'TABBY_CNI_DATAPLANE',
  'TABBY_CNI_IPAM',
  'TABBY_ETCD_TRANSPORT',
  'TABBY_IPAM_TEST_CRASH',
  'DATASTORE_TYPE',
  'ETCD_ENDPOINTS',
  'ETCD_CA_CERT_FILE',
  'ETCD_CERT_FILE',
  'ETCD_KEY_FILE',
  'ETCD_USERNAME',
  'ETCD_PASSWORD',
  'KUBECONFIG',
] as const;

const FORWARDED = new Set<string>(FORWARDED_ENV);

export interface ShimRequest {
  /** Only FORWARDED_ENV names; anything else in the request is dropped. */
  env: Record<string, string>;
  meta: { self?: string; netns?: string };
  stdin: string;
}

export type ShimReply = { kind: 'result'; code: number; stdout: string } | { kind: 'fallback'; reason: string };

export class ShimProtocolError extends TabbyError {}

/** Parse a request. Throws ShimProtocolError (code `ShimVersion` for another protocol version). */
export function decodeRequest(buf: Buffer): ShimRequest {
  const env: Record<string, string> = {};
  const meta: ShimRequest['meta'] = {};
  let pos = 0;
  let first = true;
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) throw new ShimProtocolError('ShimProtocol', 'request ends inside its header', { hint: 'the client must send an empty line before the network config' });
    const line = buf.toString('utf8', pos, nl);
    pos = nl + 1;
    if (first) {
      first = false;
      if (line !== SHIM_PROTOCOL) {
        const looksLike = /^TABBYCNI\//.test(line);
        throw new ShimProtocolError(looksLike ? 'ShimVersion' : 'ShimProtocol', looksLike ? `protocol ${line} is not ${SHIM_PROTOCOL}` : 'not a tabby CNI request', {
          hint: 'the installed shim and tabby-node come from different versions; the shim falls back to the Node plugin',
        });
      }
      continue;
    }
    if (line === '') break;
    const eq = line.indexOf('=');
    if (line.length < 3 || line[1] !== ' ' || eq < 3) throw new ShimProtocolError('ShimProtocol', `bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const key = line.slice(2, eq);
    const value = line.slice(eq + 1);
    if (line[0] === 'E') {
      if (FORWARDED.has(key)) env[key] = value;
    } else if (line[0] === 'M') {
      if (key === 'self' || key === 'netns') meta[key] = value;
    } else throw new ShimProtocolError('ShimProtocol', `bad header line ${JSON.stringify(line.slice(0, 80))}`);
  }
  return { env, meta, stdin: buf.toString('utf8', pos) };
}

/** The request bytes (what the shim writes; tests and tools use it). */
export function encodeRequest(r: ShimRequest): Buffer {
  const lines = [SHIM_PROTOCOL];
  const check = (k: string, v: string) => {
    if (v.includes('\n') || k.includes('=') || k.includes('\n')) throw new ShimProtocolError('ShimProtocol', `header ${k} cannot carry a newline`);
  };
  for (const [k, v] of Object.entries(r.env)) {
    check(k, v);
    lines.push(`E ${k}=${v}`);
  }
  for (const [k, v] of Object.entries(r.meta)) {
    if (v === undefined) continue;
    check(k, v);
    lines.push(`M ${k}=${v}`);
  }
  return Buffer.from(lines.join('\n') + '\n\n' + r.stdin, 'utf8');
}

export function encodeReply(r: ShimReply): string {
  if (r.kind === 'fallback') return `fallback ${r.reason.replace(/\n/g, ' ')}\n`;
  return `${r.code}\n${r.stdout}`;
}

/** Parse a reply as the shim does: anything that is not `<code>\n…` means fall back. */
export function decodeReply(text: string): ShimReply {
  const nl = text.indexOf('\n');
  const head = nl < 0 ? text : text.slice(0, nl);
  if (head.startsWith('fallback')) return { kind: 'fallback', reason: head.slice('fallback'.length).trim() };
  if (!/^\d{1,3}$/.test(head)) return { kind: 'fallback', reason: text === '' ? 'no reply' : 'unreadable reply' };
  return { kind: 'result', code: Number(head), stdout: nl < 0 ? '' : text.slice(nl + 1) };
}
