/** Unexpected errors of the tabby plugin → CNI error JSON (the executable and tabby-node's CNI server share it). */
import { CniCode, CniError } from '../protocol/errors.js';

export function mapPluginError(err: unknown): CniError {
  const e = err as { code?: string; message?: string; hint?: string };
  if (e.code === 'Unavailable') return new CniError(CniCode.TryAgainLater, e.message ?? 'datastore unavailable', e.hint);
  if (e.code === 'DatastoreConfig') return new CniError(CniCode.InvalidNetworkConfig, e.message ?? 'bad datastore config', e.hint);
  return new CniError(CniCode.PluginBase, e.message ?? String(err));
}
