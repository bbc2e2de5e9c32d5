/**
 * NAT outgoing over nftables, in a table of our own (default `ip tabby-nat` / `ip6 tabby-nat`):
 * masquerade traffic from natOutgoing pools to destinations outside all pools. The ruleset is a pure
 * function of the pools (unit-tested text); applying is one atomic `nft -f -` transaction that
 * (re)creates the table, so applying twice gives the same kernel state. No NAT pools → table removed.
 */
import { spawn } from 'node:child_process';
import { TabbyError } from '../lib/errors.js';
import { canonicalCidr, parseCidr } from '../api/net.js';
import type { PoolInput } from './model.js';

export type NftFamily = 'ip' | 'ip6';

export interface NatSpec {
  family: NftFamily;
  table: string;
  /** Sources to masquerade: natOutgoing pools (disabled pools included: they still hold pods). */
  masqPools: string[];
  /** Every pool: destinations inside them are not masqueraded. */
  allPools: string[];
}

export class NftError extends TabbyError {
  constructor(message: string, stderr: string) {
    super('NftFailed', `${message}: ${stderr.trim()}`, { hint: 'check that nftables is installed (Debian package nftables) and the kernel has nf_tables' });
  }
}

/** Splits pools by family into NAT specs (one per family that has pools). */
export function natSpecs(pools: readonly PoolInput[], table = 'tabby-nat'): NatSpec[] {
  const out: NatSpec[] = [];
  for (const [family, v] of [['ip', 4], ['ip6', 6]] as const) {
    const nets = pools.flatMap((p) => {
      const c = parseCidr(p.cidr);
      return c && c.family === v ? [{ cidr: canonicalCidr(c), nat: p.natOutgoing === true }] : [];
    });
    out.push({ family, table, masqPools: nets.filter((n) => n.nat).map((n) => n.cidr).sort(), allPools: nets.map((n) => n.cidr).sort() });
  }
  return out;
}

/** The table definition (empty string when nothing is masqueraded). */
export function natRuleset(s: NatSpec): string {
  if (s.masqPools.length === 0) return '';
  const addrType = s.family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const set = (name: string, elems: string[]): string[] => [
    `  set ${name} {`,
    `    type ${addrType}`,
    '    flags interval',
    ...(elems.length ? [`    elements = { ${elems.join(', ')} }`] : []),
    '  }',
  ];
  return [
    `table ${s.family} ${s.table} {`,
    ...set('masq-pools', s.masqPools),
    ...set('all-pools', s.allPools),
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ${s.family} saddr @masq-pools ${s.family} daddr != @all-pools masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * One transaction: make sure the table exists (so delete cannot fail), delete it, define it again.
 * With nothing to masquerade the script only removes the table.
 */
export function natScript(s: NatSpec): string {
  return [`table ${s.family} ${s.table} {}`, `delete table ${s.family} ${s.table}`, natRuleset(s)].join('\n');
}

/** Runs `nft -f -` (inside `netns` via `ip netns exec` when given). */
export function runNft(script: string, netns?: string): Promise<void> {
  const [cmd, args] = netns ? ['ip', ['netns', 'exec', netns, 'nft', '-f', '-']] : ['nft', ['-f', '-']];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (err) => reject(new NftError(`cannot run ${cmd}`, err.message)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new NftError(`nft -f - exited ${code}`, stderr))));
    p.stdin.end(script);
  });
}

export type NftRunner = (script: string) => Promise<void>;

/** Applies NAT for the pools when it changed since the last apply (force: always, e.g. periodic resync). */
export class NatManager {
  private last = new Map<NftFamily, string>();
  constructor(
    private readonly run: NftRunner,
    private readonly table = 'tabby-nat',
  ) {}

  /** Both families' changes go to nft as one script: one process per change (the first sync ensures both). */
  async sync(pools: readonly PoolInput[], force = false): Promise<boolean> {
    const changed = natSpecs(pools, this.table).flatMap((spec) => {
      const text = natRuleset(spec);
      return !force && this.last.get(spec.family) === text ? [] : [{ spec, text }];
    });
    if (changed.length === 0) return false;
    await this.run(changed.map((c) => natScript(c.spec)).join(''));
    for (const c of changed) this.last.set(c.spec.family, c.text);
    return true;
  }

  /** Removes our tables (NAT disabled / uninstall). */
  async remove(): Promise<void> {
    await this.run((['ip', 'ip6'] as const).map((family) => natScript({ family, table: this.table, masqPools: [], allPools: [] })).join(''));
    this.last.clear();
  }
}
