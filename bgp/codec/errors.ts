/**
 * BGP protocol errors. A decode error is a protocol object: it carries the NOTIFICATION
 * (code, subcode, data) the session must send and the RFC 7606 action. The session turns a
 * `session-reset` error into a NOTIFICATION in one place; the other actions never escape
 * `decodeUpdate` (they come back as notes / a treatAsWithdraw flag on the result).
 */
import { TabbyError } from '../../lib/errors.js';

/** RFC 7606 §2 error handling approaches, weakest first. */
export type ErrorAction = 'attribute-discard' | 'treat-as-withdraw' | 'afisafi-disable' | 'session-reset';

const ACTION_RANK: Record<ErrorAction, number> = {
  'attribute-discard': 1,
  'treat-as-withdraw': 2,
  'afisafi-disable': 3,
  'session-reset': 4,
};

export const NotifCode = {
  MESSAGE_HEADER: 1,
  OPEN: 2,
  UPDATE: 3,
  HOLD_TIMER_EXPIRED: 4,
  FSM: 5,
  CEASE: 6,
  ROUTE_REFRESH: 7,
  SEND_HOLD_TIMER_EXPIRED: 8,
} as const;

export const HeaderSub = { CONNECTION_NOT_SYNCHRONIZED: 1, BAD_MESSAGE_LENGTH: 2, BAD_MESSAGE_TYPE: 3 } as const;
export const OpenSub = {
  UNSUPPORTED_VERSION: 1,
  BAD_PEER_AS: 2,
  BAD_BGP_ID: 3,
  UNSUPPORTED_OPT_PARAM: 4,
  UNACCEPTABLE_HOLD_TIME: 6,
  UNSUPPORTED_CAPABILITY: 7,
  ROLE_MISMATCH: 11,
} as const;
export const UpdateSub = {
  MALFORMED_ATTR_LIST: 1,
  UNRECOGNIZED_WELL_KNOWN: 2,
  MISSING_WELL_KNOWN: 3,
  ATTR_FLAGS: 4,
  ATTR_LENGTH: 5,
  INVALID_ORIGIN: 6,
  INVALID_NEXT_HOP: 8,
  OPTIONAL_ATTR: 9,
  INVALID_NETWORK_FIELD: 10,
  MALFORMED_AS_PATH: 11,
} as const;
export const FsmSub = { UNSPECIFIED: 0, OPEN_SENT: 1, OPEN_CONFIRM: 2, ESTABLISHED: 3 } as const;
export const CeaseSub = {
  MAX_PREFIXES: 1,
  ADMIN_SHUTDOWN: 2,
  PEER_DECONFIGURED: 3,
  ADMIN_RESET: 4,
  CONNECTION_REJECTED: 5,
  OTHER_CONFIG_CHANGE: 6,
  COLLISION_RESOLUTION: 7,
  OUT_OF_RESOURCES: 8,
  HARD_RESET: 9,
  BFD_DOWN: 10,
} as const;

/** IANA NOTIFICATION code/subcode names. */
export const NOTIFICATION_NAMES: Record<number, { name: string; subcodes: Record<number, string> }> = {
  1: {
    name: 'Message Header Error',
    subcodes: { 1: 'Connection Not Synchronized', 2: 'Bad Message Length', 3: 'Bad Message Type' },
  },
  2: {
    name: 'OPEN Message Error',
    subcodes: {
      1: 'Unsupported Version Number',
      2: 'Bad Peer AS',
      3: 'Bad BGP Identifier',
      4: 'Unsupported Optional Parameter',
      5: 'Authentication Failure (deprecated)',
      6: 'Unacceptable Hold Time',
      7: 'Unsupported Capability',
      11: 'Role Mismatch',
    },
  },
  3: {
    name: 'UPDATE Message Error',
    subcodes: {
      1: 'Malformed Attribute List',
      2: 'Unrecognized Well-known Attribute',
      3: 'Missing Well-known Attribute',
      4: 'Attribute Flags Error',
      5: 'Attribute Length Error',
      6: 'Invalid ORIGIN Attribute',
      7: 'AS Routing Loop (deprecated)',
      8: 'Invalid NEXT_HOP Attribute',
      9: 'Optional Attribute Error',
      10: 'Invalid Network Field',
      11: 'Malformed AS_PATH',
    },
  },
  4: { name: 'Hold Timer Expired', subcodes: {} },
  5: {
    name: 'Finite State Machine Error',
    subcodes: {
      0: 'Unspecified Error',
      1: 'Receive Unexpected Message in OpenSent State',
      2: 'Receive Unexpected Message in OpenConfirm State',
      3: 'Receive Unexpected Message in Established State',
    },
  },
  6: {
    name: 'Cease',
    subcodes: {
      1: 'Maximum Number of Prefixes Reached',
      2: 'Administrative Shutdown',
      3: 'Peer De-configured',
      4: 'Administrative Reset',
      5: 'Connection Rejected',
      6: 'Other Configuration Change',
      7: 'Connection Collision Resolution',
      8: 'Out of Resources',
      9: 'Hard Reset',
      10: 'BFD Down',
    },
  },
  7: { name: 'ROUTE-REFRESH Message Error', subcodes: { 1: 'Invalid Message Length' } },
  8: { name: 'Send Hold Timer Expired', subcodes: {} },
};

/** "Cease / Administrative Shutdown (6/2)" */
export function notificationName(code: number, subcode: number): string {
  const c = NOTIFICATION_NAMES[code];
  if (!c) return `Unknown error code ${code} (${code}/${subcode})`;
  const s = c.subcodes[subcode];
  if (s) return `${c.name} / ${s} (${code}/${subcode})`;
  return subcode === 0 ? `${c.name} (${code}/0)` : `${c.name} / subcode ${subcode} (${code}/${subcode})`;
}

/**
 * A BGP protocol error. `notifCode`/`notifSubcode`/`data` are what goes into the NOTIFICATION
 * (when `action` is `session-reset`); `action` is the RFC 7606 treatment.
 */
export class BgpError extends TabbyError {
  readonly notifCode: number;
  readonly notifSubcode: number;
  readonly data: Uint8Array;
  readonly action: ErrorAction;
  /** Attribute type the error is about, when it is about one. */
  readonly attrType: number | undefined;
  constructor(
    notifCode: number,
    notifSubcode: number,
    message: string,
    opts: { data?: Uint8Array; action?: ErrorAction; attrType?: number; hint?: string } = {},
  ) {
    super(`BGP_${notifCode}_${notifSubcode}`, `${message} [${notificationName(notifCode, notifSubcode)}]`, {
      hint: opts.hint ?? 'the peer sent a malformed message; the session answers with a NOTIFICATION',
    });
    this.notifCode = notifCode;
    this.notifSubcode = notifSubcode;
    this.data = opts.data ?? new Uint8Array(0);
    this.action = opts.action ?? 'session-reset';
    this.attrType = opts.attrType;
  }

  /** True when this error calls for a stronger treatment than `other`. */
  stronger(other: BgpError | undefined): boolean {
    return other === undefined || ACTION_RANK[this.action] > ACTION_RANK[other.action];
  }
}

/** The message is for an address family the codec does not implement (e.g. flowspec, VPN). */
export class UnsupportedFamilyError extends BgpError {
  readonly afi: number;
  readonly safi: number;
  constructor(afi: number, safi: number, where: string) {
    super(NotifCode.UPDATE, UpdateSub.OPTIONAL_ATTR, `${where}: unsupported address family AFI ${afi} SAFI ${safi}`, {
      action: 'afisafi-disable',
      attrType: undefined,
      hint: 'only ipv4-unicast and ipv6-unicast are supported; do not negotiate other families',
    });
    this.afi = afi;
    this.safi = safi;
  }
}

export function actionRank(a: ErrorAction): number {
  return ACTION_RANK[a];
}
