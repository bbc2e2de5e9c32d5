/** `tabbyctl version [--client]`: client version and, from ClusterInformation, the cluster's. */
import type { Argv } from 'yargs';
import { VERSION } from '../../lib/version.js';
import { clusterInformation } from '../context.js';
import { reason } from '../resources.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';

interface VersionArgs extends GlobalArgs {
  client?: boolean;
}

export const versionCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'version',
  describe: 'Show the client version and the cluster version',
  builder: (y: Argv) => y.options({ client: { type: 'boolean', default: false, describe: 'only the client version (no datastore)' } }),
  handler: (args: VersionArgs) =>
    s.run({ ...args, allowVersionMismatch: true }, async (ctx) => {
      ctx.out(`Client Version:    v${VERSION}`);
      if (args.client) return 0;
      try {
        const info = await clusterInformation(await ctx.datastore());
        const spec = (info?.spec ?? {}) as { calicoVersion?: string; clusterType?: string };
        ctx.out(`Cluster Version:   ${spec.calicoVersion || 'unknown'}`);
        ctx.out(`Cluster Type:      ${spec.clusterType || 'unknown'}`);
        return 0;
      } catch (e) {
        ctx.err(`Unable to retrieve Cluster Version or Type: ${reason(e)}`);
        return 1;
      }
    }),
  });
