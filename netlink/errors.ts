/**
 * Typed netlink errors. `code` is the errno name ('EEXIST', 'ENOENT', 'ESRCH', 'ENODEV', …) like
 * Node's own system errors, so callers write `if (err.code === 'EEXIST')`.
 */
import { constants } from 'node:os';
import { TabbyError } from '../lib/errors.js';

const ERRNO_NAMES = new Map<number, string>();
const PREFERRED = new Set(['EAGAIN', 'EDEADLK', 'EOPNOTSUPP']);
for (const [name, num] of Object.entries(constants.errno)) {
  // Aliases share a number (EWOULDBLOCK/EAGAIN, EDEADLOCK/EDEADLK, ENOTSUP/EOPNOTSUPP): prefer the common name.
  if (!ERRNO_NAMES.has(num) || PREFERRED.has(name)) ERRNO_NAMES.set(num, name);
}
export const errnoName = (errno: number): string => ERRNO_NAMES.get(errno) ?? `E${errno}`;
export const errnoOf = (name: string): number | undefined => (constants.errno as Record<string, number>)[name];

const HINTS: Record<string, string> = {
  EEXIST: 'the object already exists; use the replace variant to overwrite it',
  ENODEV: 'the interface does not exist (or is in another network namespace)',
  ESRCH: 'no such object (route or neighbour) to delete or change',
  ENOENT: 'no such object',
  EPERM: 'needs CAP_NET_ADMIN (run as root)',
  EOPNOTSUPP: 'the kernel does not support this (missing module or link type?)',
  ENETUNREACH: 'the gateway is not reachable through any interface (add a link route or use onlink)',
  ENOBUFS: 'the socket receive buffer overflowed; resync (dump) to get a consistent view',
};

export interface NetlinkErrorDetails {
  /** What we were doing, e.g. "RTM_NEWROUTE 10.0.0.0/24". */
  op?: string;
  /** The kernel's extended ACK message, if any. */
  extAck?: string;
  extAckOffset?: number;
}

/** The kernel answered a request with an error, or a syscall on the netlink socket failed. */
export class NetlinkError extends TabbyError {
  readonly errno: number;
  readonly op: string | undefined;
  readonly extAck: string | undefined;
  readonly extAckOffset: number | undefined;
  constructor(errno: number, details: NetlinkErrorDetails = {}, options?: { cause?: unknown }) {
    const name = errnoName(errno);
    const what = details.op ? `${details.op}: ` : '';
    const ext = details.extAck ? ` (${details.extAck})` : '';
    super(name, `netlink ${what}${name}${ext}`, { hint: HINTS[name], cause: options?.cause });
    this.errno = errno;
    this.op = details.op;
    this.extAck = details.extAck;
    this.extAckOffset = details.extAckOffset;
  }
}

/** linkByName/linkByIndex found nothing. code = 'ENODEV'. */
export class LinkNotFoundError extends NetlinkError {
  readonly link: string | number;
  constructor(link: string | number, op?: string) {
    super(19 /* ENODEV */, { op: op ?? `link ${JSON.stringify(link)} not found` });
    this.link = link;
  }
}

/** The kernel flagged a dump with NLM_F_DUMP_INTR (a change raced it) more times than we retry. */
export class DumpInterruptedError extends NetlinkError {
  constructor(op: string) {
    super(4 /* EINTR */, { op: `${op}: dump interrupted by concurrent changes` });
  }
}

/** A reply could not be parsed (kernel/codec mismatch or corrupted data). */
export class NetlinkDecodeError extends TabbyError {
  constructor(message: string) {
    super('NETLINK_DECODE', message, { hint: 'this is a bug in netlink/ or an unexpected kernel reply; report it with the bytes' });
  }
}

/** The caller passed something we cannot encode (bad address, missing field). */
export class NetlinkInputError extends TabbyError {
  constructor(message: string) {
    super('NETLINK_INPUT', message, { hint: 'fix the argument passed to the netlink call' });
  }
}
