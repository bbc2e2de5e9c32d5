/**
 * Pods: one network namespace per pod, plumbed by exec'ing the real CNI plugin (`bin/tabby`, IPAM
 * `tabby-ipam`) from inside the pod's node namespace, exactly as a container runtime would.
 */
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterState, NodePlan, Plan, PodPlan } from './plan.js';
import { ClusterError, cniNetconf } from './plan.js';
import { createPodNs } from './topology.js';
import type { SaveState } from './topology.js';
import { childEnv, run } from './sys.js';

/** CNI_PATH with tabby and tabby-ipam (symlinks to the checkout's launchers). */
export function prepareCniPath(root: string, plan: Plan): string {
  const bin = join(plan.cniDir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const name of ['tabby', 'tabby-ipam']) {
    const link = join(bin, name);
    if (!existsSync(link)) symlinkSync(join(root, 'bin', name), link);
  }
  return bin;
}

export async function cniCall(plan: Plan, n: NodePlan, pod: PodPlan, command: 'ADD' | 'DEL', cniPath: string): Promise<{ code: number; out: string; err: string }> {
  const env = childEnv({
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: `/var/run/netns/${pod.netns}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: cniPath,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId}`,
  });
  const r = await run('ip', ['netns', 'exec', n.netns, join(cniPath, 'tabby')], { input: JSON.stringify(cniNetconf(plan, n)), env, timeoutMs: 60000 });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** Create the pod namespace and ADD it; returns the pod's IPv4 address. */
export async function addPod(plan: Plan, n: NodePlan, pod: PodPlan, cniPath: string, state: ClusterState, save: SaveState): Promise<string> {
  await createPodNs(pod.netns, state, save);
  const r = await cniCall(plan, n, pod, 'ADD', cniPath);
  let result: { ips?: Array<{ address?: string }>; code?: number; msg?: string; details?: string } = {};
  try {
    result = JSON.parse(r.out) as typeof result;
  } catch {
    // reported below
  }
  if (r.code !== 0) {
    throw new ClusterError(`CNI ADD of ${pod.name} on ${n.name} failed (exit ${r.code}): ${result.msg ?? r.out.trim()} ${result.details ?? ''} ${r.err.trim()}`.trim(), `see ${plan.cniDir}/${n.name}.log`);
  }
  const ip = result.ips?.[0]?.address?.split('/')[0];
  if (ip === undefined) throw new ClusterError(`CNI ADD of ${pod.name} returned no address: ${r.out.trim()}`);
  return ip;
}

/** The pod's eth0 IPv4 address, read from its namespace ('' when none). */
export async function podIp(pod: PodPlan): Promise<string> {
  const r = await run('ip', ['-n', pod.netns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout);
  return m?.[1] ?? '';
}
