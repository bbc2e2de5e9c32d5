/**
 * `tabbyctl bgp status --socket PATH [-o table|json|details]` and
 * `tabbyctl bgp routes --socket PATH [PREFIX] [-o table|json]`: ask a running tabby-bgp (or
 * tabby-node) over its status socket. Querying and formatting live in bgp/ctl.ts; this module
 * only parses flags and prints.
 */
import type { Argv } from 'yargs';
import { formatPeerDetails, formatPeerTable, formatRoutes, queryRoutes, queryStatus } from '../../bgp/ctl.js';
import { CtlError } from '../context.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';

export const DEFAULT_BGP_SOCKET = '/run/tabby-bgp.sock';

interface SocketArgs extends GlobalArgs {
  socket: string;
  output: string;
  timeout: number;
}

interface RoutesArgs extends SocketArgs {
  prefix?: string;
}

const socketOptions = {
  socket: { alias: 's', type: 'string', default: DEFAULT_BGP_SOCKET, describe: 'status socket of the speaker (statusSocket in its config)' },
  timeout: { type: 'number', default: 5000, describe: 'ms to wait for the answer' },
} as const;

function checkOutput(o: string, allowed: readonly string[]): void {
  if (!allowed.includes(o)) throw new CtlError(`unsupported output format "${o}"`, `use one of: ${allowed.join(', ')}`);
}

export const bgpCommand: CommandFactory = (s) =>
  defineCommand<GlobalArgs>({
    command: 'bgp',
    describe: 'BGP speaker inspection: peers, routes',
    builder: (y: Argv) =>
      y
        .command(
          defineCommand<SocketArgs>({
            command: 'status',
            describe: 'Show the BGP peers of a running speaker',
            builder: (yy: Argv) =>
              yy.options({
                ...socketOptions,
                output: { alias: 'o', type: 'string', default: 'table', describe: 'table, details or json' },
              }) as unknown as Argv<SocketArgs>,
            handler: (args: SocketArgs) =>
              s.run(args, async (ctx) => {
                checkOutput(args.output, ['table', 'details', 'json']);
                const st = await queryStatus(args.socket, args.timeout);
                if (args.output === 'json') ctx.out(JSON.stringify(st, null, 2));
                else if (args.output === 'details') ctx.out(formatPeerDetails(st));
                else {
                  ctx.out(`BGP router id ${st.routerId}, AS ${st.asNumber}`);
                  ctx.out(st.peers.length ? formatPeerTable(st) : 'No BGP peers configured.');
                }
                return 0;
              }),
          }),
        )
        .command(
          defineCommand<RoutesArgs>({
            command: 'routes [prefix]',
            describe: 'Show the Loc-RIB (all paths, best-path reasons), or one prefix',
            builder: (yy: Argv) =>
              yy
                .positional('prefix', { type: 'string', describe: 'only this prefix (e.g. 10.244.1.0/26)' })
                .options({
                  ...socketOptions,
                  output: { alias: 'o', type: 'string', default: 'table', describe: 'table or json' },
                }) as unknown as Argv<RoutesArgs>,
            handler: (args: RoutesArgs) =>
              s.run(args, async (ctx) => {
                checkOutput(args.output, ['table', 'json']);
                const routes = await queryRoutes(args.socket, args.prefix, args.timeout);
                if (args.output === 'json') ctx.out(JSON.stringify(routes, null, 2));
                else if (routes.length === 0) ctx.out(args.prefix === undefined ? 'No routes.' : `No route for ${args.prefix}.`);
                else ctx.out(formatRoutes(routes));
                // Like `ip route get`: asking for one prefix that is absent is an error exit.
                return args.prefix !== undefined && routes.length === 0 ? 1 : 0;
              }),
          }),
        )
        .demandCommand(1, 'give a bgp subcommand: status or routes') as unknown as Argv<GlobalArgs>,
    handler: () => undefined,
  });
