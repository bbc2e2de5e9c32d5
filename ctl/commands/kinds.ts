/** Resolving the `<kind>` argument of get/delete/label/patch (kind, plural or short name). */
import type { KindInfo } from '../../api/kinds.js';
import { KINDS, findKind } from '../../api/kinds.js';
import { CtlError } from '../context.js';

export function resolveKindArg(arg: string): KindInfo {
  const info = findKind(arg);
  if (!info) {
    const known = KINDS.map((k) => k.aliases[0] ?? k.kind.toLowerCase()).join(', ');
    throw new CtlError(`resource type '${arg}' is not supported`, `known types: ${known}`);
  }
  return info;
}
