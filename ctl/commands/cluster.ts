/**
 * `tabbyctl cluster up|down|status`: the local demo cluster in network namespaces (cluster/).
 * `npm run demo` runs `tabbyctl cluster up`; `npm run demo -- down` becomes `cluster up down`, which
 * is read as `cluster down` (likewise `up status`).
 */
import type { Argv } from 'yargs';
import type { ClusterOptions, DatastoreKind, Encap } from '../../cluster/plan.js';
import { DEMO_PREFIX, defaultOptions, defaultStateDir } from '../../cluster/plan.js';
import { clusterDown, clusterStatus, clusterUp } from '../../cluster/up.js';
import type { CtlContext } from '../context.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';

interface ClusterArgs extends GlobalArgs {
  what?: string;
  prefix?: string;
  stateDir?: string;
  nodes?: number;
  podsPerNode?: number;
  encap?: string;
  datastore?: string;
  kubeconfig?: string;
  crossSubnet?: boolean;
  ipv6?: boolean;
}

const commonOptions = {
  prefix: { type: 'string', describe: `network namespace name prefix (default ${DEMO_PREFIX})` },
  'state-dir': { type: 'string', describe: 'state directory (default /run/tabby-demo for the demo prefix)' },
} as const;

const upOptions = {
  ...commonOptions,
  nodes: { type: 'number', describe: 'number of nodes (default 3)' },
  'pods-per-node': { type: 'number', describe: 'pods per node (default 2)' },
  encap: { type: 'string', choices: ['none', 'vxlan', 'ipip'], describe: 'pod traffic between nodes (default none)' },
  'cross-subnet': { type: 'boolean', describe: 'nodes on two subnets behind the ToR router (default: on for vxlan/ipip)' },
  datastore: { type: 'string', choices: ['etcdv3', 'kubernetes'], describe: 'datastore (default etcdv3: an etcd is started)' },
  kubeconfig: { type: 'string', describe: 'kubeconfig for --datastore kubernetes (default: run the Kubernetes API test server of the checkout)' },
  ipv6: { type: 'boolean', describe: 'dual stack: IPv6 on the fabric, an IPv6 pool, pods with v4 + v6 addresses' },
} as const;

function optionsFrom(a: ClusterArgs): ClusterOptions {
  const prefix = a.prefix ?? DEMO_PREFIX;
  return defaultOptions({
    prefix,
    stateDir: a.stateDir ?? defaultStateDir(prefix),
    ...(a.nodes === undefined ? {} : { nodes: a.nodes }),
    ...(a.podsPerNode === undefined ? {} : { podsPerNode: a.podsPerNode }),
    ...(a.encap === undefined ? {} : { encap: a.encap as Encap }),
    ...(a.crossSubnet === undefined ? {} : { crossSubnet: a.crossSubnet }),
    ...(a.datastore === undefined ? {} : { datastore: a.datastore as DatastoreKind }),
    ...(a.kubeconfig === undefined ? {} : { kubeconfig: a.kubeconfig }),
    ...(a.ipv6 === undefined ? {} : { ipv6: a.ipv6 }),
  });
}

async function down(ctx: CtlContext, a: ClusterArgs): Promise<number> {
  const prefix = a.prefix ?? DEMO_PREFIX;
  const r = await clusterDown(prefix, a.stateDir ?? defaultStateDir(prefix), { out: (l) => ctx.out(l), err: (l) => ctx.err(l) });
  ctx.out(`cluster down: removed ${r.netns} namespaces, stopped ${r.procs} processes, ${r.links} root links, ${r.dirs} directories`);
  return 0;
}

export const clusterCommand: CommandFactory = (s) =>
  defineCommand<GlobalArgs>({
    command: 'cluster',
    describe: 'Local demo cluster in network namespaces: up, down, status',
    builder: (y: Argv) =>
      y
        .command(
          defineCommand<ClusterArgs>({
            command: 'up [what]',
            describe: 'Create (or complete) the cluster and print its report; `up down` = down, `up status` = status',
            builder: (yy: Argv) =>
              yy.positional('what', { type: 'string', choices: ['down', 'status'] }).options(upOptions) as unknown as Argv<ClusterArgs>,
            handler: (a: ClusterArgs) =>
              s.run(a, async (ctx) => {
                const io = { out: (l: string) => ctx.out(l), err: (l: string) => ctx.err(l) };
                if (a.what === 'down') return down(ctx, a);
                if (a.what === 'status') return clusterStatus(optionsFrom(a), io);
                const r = await clusterUp(optionsFrom(a), io);
                return r.nodesRunning && r.pingOk < r.pingTotal ? 1 : 0;
              }),
          }),
        )
        .command(
          defineCommand<ClusterArgs>({
            command: 'down',
            describe: 'Remove every namespace, process, link and directory of the cluster',
            builder: (yy: Argv) => yy.options(commonOptions) as unknown as Argv<ClusterArgs>,
            handler: (a: ClusterArgs) => s.run(a, (ctx) => down(ctx, a)),
          }),
        )
        .command(
          defineCommand<ClusterArgs>({
            command: 'status',
            describe: 'Show the running cluster (processes, nodes, IPAM, routes, ping matrix, BIRD)',
            builder: (yy: Argv) => yy.options(commonOptions) as unknown as Argv<ClusterArgs>,
            handler: (a: ClusterArgs) =>
              s.run(a, (ctx) => clusterStatus(optionsFrom(a), { out: (l) => ctx.out(l), err: (l) => ctx.err(l) })),
          }),
        )
        .demandCommand(1, 'tabbyctl cluster: say up, down or status'),
    handler: () => undefined,
  });
