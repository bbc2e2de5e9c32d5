/**
 * tunl0: the IPIP fallback device (created by the ipip module), MTU host−20, address = the node's IPIP
 * tunnel IP/32. Kernels without ipip get a typed IpipUnsupportedError; callers decide (log + skip IPIP
 * routes, or fail).
 */
import { TabbyError } from '../lib/errors.js';
import { LinkNotFoundError, NetlinkError, type Link } from '../netlink/index.js';
import { ensureSoleAddress, type DataplaneNetlink } from './shim.js';

export class IpipUnsupportedError extends TabbyError {
  constructor(cause?: unknown) {
    super('IpipUnsupported', 'kernel has no ipip support', {
      hint: 'load the ipip module (modprobe ipip) or use a VXLAN / no-encap pool (ipipMode: Never)',
      cause,
    });
  }
}

export interface IpipDeviceSpec {
  name: string;
  mtu: number;
  /** The node's IPIP tunnel address (no prefix); absent = leave addresses alone. */
  tunnelIp?: string;
}

export async function ensureIpipDevice(nl: DataplaneNetlink, spec: IpipDeviceSpec): Promise<Link> {
  let link: Link;
  try {
    link = await nl.linkByName(spec.name);
  } catch (err) {
    if (!(err instanceof LinkNotFoundError)) throw err;
    try {
      await nl.linkAdd({ name: spec.name, kind: 'ipip', ipip: {} });
    } catch (addErr) {
      if (addErr instanceof NetlinkError && ['EOPNOTSUPP', 'ENOTSUP', 'EAFNOSUPPORT', 'EINVAL', 'ENODEV'].includes(addErr.code)) {
        throw new IpipUnsupportedError(addErr);
      }
      throw addErr;
    }
    link = await nl.linkByName(spec.name);
  }
  if (link.mtu !== spec.mtu || !link.up) await nl.linkSet(link.index, { mtu: spec.mtu, up: true });
  if (spec.tunnelIp !== undefined) {
    await ensureSoleAddress(nl, link.index, `${spec.tunnelIp}/32`);
  }
  return nl.linkByName(spec.name);
}
