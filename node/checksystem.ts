/**
 * `tabbyctl node checksystem`: kernel features tabby-node needs, each probed for real, with what is
 * missing and what to do. Probes are injectable so formatting and verdicts are unit-tested.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

export type Verdict = 'OK' | 'FAIL' | 'ABSENT' | 'UNKNOWN';

export interface CheckResult {
  name: string;
  verdict: Verdict;
  /** Required checks make the system unfit when they fail; optional ones only warn. */
  required: boolean;
  detail: string;
}

export type Probe = () => Promise<{ verdict: Verdict; detail: string }>;

export interface CheckDefinition {
  name: string;
  required: boolean;
  probe: Probe;
}

export async function runChecks(defs: readonly CheckDefinition[]): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const d of defs) {
    try {
      const r = await d.probe();
      out.push({ name: d.name, required: d.required, ...r });
    } catch (err) {
      out.push({ name: d.name, required: d.required, verdict: 'UNKNOWN', detail: (err as Error).message });
    }
  }
  return out;
}

export function formatChecks(results: readonly CheckResult[]): { text: string; ok: boolean } {
  const lines = ['Checking kernel features...'];
  const w = Math.max(...results.map((r) => r.name.length), 20);
  for (const r of results) lines.push(`\t\t${r.name.padEnd(w)}\t\t${r.verdict.padEnd(7)}\t${r.detail}${r.required ? '' : ' (optional)'}`);
  const missing = results.filter((r) => r.verdict !== 'OK');
  const fatal = missing.filter((r) => r.required);
  lines.push('');
  if (missing.length) {
    lines.push('Missing or unavailable:');
    for (const m of missing) lines.push(`  - ${m.name}: ${m.detail}${m.required ? '' : ' (optional)'}`);
  }
  lines.push(fatal.length === 0 ? 'System meets minimum system requirements to run tabby-node!' : 'System does NOT meet the requirements to run tabby-node.');
  return { text: `${lines.join('\n')}\n`, ok: fatal.length === 0 };
}

function netlinkCode(err: unknown): string {
  return (err as { code?: string }).code ?? (err as Error).message;
}

/** Try to create a link of `kind` (in the current netns) and delete it again. */
function linkProbe(kind: 'veth' | 'vxlan' | 'ipip', netns?: string): Probe {
  return async () => {
    if (process.getuid?.() !== 0) return { verdict: 'UNKNOWN', detail: 'needs root to probe' };
    const { Netlink } = await import('../netlink/index.js');
    const nl = Netlink.open(netns ? { netns } : {});
    const name = `tbyck${process.pid % 100000}`;
    try {
      if (kind === 'veth') await nl.linkAdd({ name, kind: 'veth', peer: { name: `${name}p` } });
      else if (kind === 'vxlan') await nl.linkAdd({ name, kind: 'vxlan', vxlan: { id: 4096, port: 4789, learning: false } });
      else await nl.linkAdd({ name, kind: 'ipip', ipip: {} });
      await nl.linkDel(name);
      return { verdict: 'OK', detail: `${kind} links can be created` };
    } catch (err) {
      const code = netlinkCode(err);
      if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EINVAL') {
        const what = kind === 'ipip' ? 'IPIP pools cannot be used on this node; use VXLAN or no encapsulation' : `${kind} is required`;
        return { verdict: 'ABSENT', detail: `kernel has no ${kind} link type (${code}): ${what}` };
      }
      return { verdict: 'FAIL', detail: `creating a ${kind} link failed: ${code}` };
    } finally {
      await nl.linkDel(name).catch(() => undefined);
      nl.close();
    }
  };
}

function kernelConfig(): string | undefined {
  const p = `/boot/config-${release()}`;
  try {
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

function sysctlProbe(key: string, want: string, why: string): Probe {
  return async () => {
    const p = `/proc/sys/${key.replace(/\./g, '/')}`;
    if (!existsSync(p)) return { verdict: 'ABSENT', detail: `${key} not present` };
    const v = readFileSync(p, 'utf8').trim();
    return v === want ? { verdict: 'OK', detail: `${key} = ${v}` } : { verdict: 'FAIL', detail: `${key} = ${v}, want ${want} (${why})` };
  };
}

/** The real checks tabby-node needs on this host (`netns`: probe link types in that namespace instead). */
export function defaultChecks(netns?: string): CheckDefinition[] {
  return [
    {
      name: 'kernel version',
      required: true,
      probe: async () => {
        const [maj = 0, min = 0] = release().split('.').map((x) => parseInt(x, 10));
        return maj > 3 || (maj === 3 && min >= 10) ? { verdict: 'OK', detail: release() } : { verdict: 'FAIL', detail: `${release()} < 3.10` };
      },
    },
    {
      name: 'netns',
      required: true,
      probe: async () => (existsSync('/proc/self/ns/net') ? { verdict: 'OK', detail: 'network namespaces supported' } : { verdict: 'FAIL', detail: '/proc/self/ns/net missing' }),
    },
    { name: 'veth', required: true, probe: linkProbe('veth', netns) },
    { name: 'vxlan', required: false, probe: linkProbe('vxlan', netns) },
    { name: 'ipip', required: false, probe: linkProbe('ipip', netns) },
    {
      name: 'nftables',
      required: false,
      probe: async () => {
        try {
          const v = execFileSync('nft', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
          if (process.getuid?.() === 0) execFileSync('nft', ['list', 'tables'], { stdio: 'ignore' });
          return { verdict: 'OK', detail: v };
        } catch (err) {
          return { verdict: 'ABSENT', detail: `nft unusable (${(err as Error).message.split('\n')[0]}): natOutgoing needs nftables` };
        }
      },
    },
    {
      name: 'TCP_MD5SIG',
      required: false,
      probe: async () => {
        const cfg = kernelConfig();
        if (cfg === undefined) return { verdict: 'UNKNOWN', detail: 'no /boot/config; BGP passwords need CONFIG_TCP_MD5SIG' };
        return /^CONFIG_TCP_MD5SIG=y/m.test(cfg)
          ? { verdict: 'OK', detail: 'CONFIG_TCP_MD5SIG=y' }
          : { verdict: 'ABSENT', detail: 'kernel built without TCP_MD5SIG: BGP passwords cannot be used' };
      },
    },
    sysctlDef('net.ipv4.ip_forward', '1', 'tabby-node sets it at start; pods cannot route until it is 1', false),
    {
      name: 'net.ipv4.conf.all.rp_filter',
      required: false,
      probe: async () => {
        const p = '/proc/sys/net/ipv4/conf/all/rp_filter';
        if (!existsSync(p)) return { verdict: 'ABSENT', detail: 'rp_filter sysctl not present' };
        return { verdict: 'OK', detail: `net.ipv4.conf.all.rp_filter = ${readFileSync(p, 'utf8').trim()}` };
      },
    },
  ];
}

function sysctlDef(key: string, want: string, why: string, required: boolean): CheckDefinition {
  return { name: key, required, probe: sysctlProbe(key, want, why) };
}
