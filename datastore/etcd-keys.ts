/** etcd key layout shared by both etcd transports (etcd.ts: gRPC, etcd-http.ts: JSON gateway). */
import type { KindInfo } from '../api/kinds.js';
import { effectiveNamespace } from './common.js';

export const ETCD_KEY_PREFIX = '/calico/resources/v3/projectcalico.org/';

/** Key of one object. */
export function etcdKey(info: KindInfo, name: string, namespace?: string, prefix = ETCD_KEY_PREFIX): string {
  const ns = effectiveNamespace(info, namespace);
  return ns === undefined ? `${prefix}${info.plural}/${name}` : `${prefix}${info.plural}/${ns}/${name}`;
}

/** Range prefix for a list or watch: the kind's keys, narrowed by namespace and (when it maps onto the key) name prefix. */
export function etcdListPrefix(info: KindInfo, opts: { namespace?: string; namePrefix?: string } | undefined, prefix = ETCD_KEY_PREFIX): string {
  const base = `${prefix}${info.plural}/`;
  if (!info.namespaced) return base + (opts?.namePrefix ?? '');
  if (opts?.namespace) return `${base}${opts.namespace}/${opts.namePrefix ?? ''}`;
  return base;
}
