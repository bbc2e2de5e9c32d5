/**
 * CNI error results (CNI spec "Error" section): `{cniVersion, code, msg, details}` on stdout and a
 * non-zero exit. Codes 1–99 are the spec's; 100+ belong to the plugin.
 */
import { TabbyError } from '../../lib/errors.js';

export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the plugin cannot service ADD requests. */
  PluginNotAvailable: 50,
  /** STATUS: not available, and existing containers may have limited connectivity. */
  PluginNotAvailableLimitedConnectivity: 51,
  /** First plugin-specific code. */
  PluginBase: 100,
} as const;

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends TabbyError {
  readonly cniCode: number;
  readonly details: string | undefined;
  constructor(cniCode: number, msg: string, details?: string, options?: { hint?: string; cause?: unknown }) {
    super(`Cni${cniCode}`, msg, options);
    this.cniCode = cniCode;
    this.details = details;
  }

  toJSON(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.cniCode, msg: this.message };
    const details = [this.details, this.hint].filter(Boolean).join('; ');
    if (details) out.details = details;
    return out;
  }
}
