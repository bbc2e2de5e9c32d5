/** `tabbyctl node status [--run-dir] [--verbose] [-o json]` and `tabbyctl node checksystem` (no datastore needed). */
import type { Argv } from 'yargs';
import { checksystemCommand, nodeStatusCommand, type CommandOutput } from '../../node/ctl.js';
import type { CtlContext } from '../context.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';

interface StatusArgs extends GlobalArgs {
  runDir?: string;
  verbose?: boolean;
  output?: string;
}

function emit(ctx: CtlContext, o: CommandOutput): number {
  if (o.stdout) ctx.out(o.stdout.replace(/\n$/, ''));
  if (o.stderr) ctx.err(o.stderr.replace(/\n$/, ''));
  return o.code;
}

export const nodeCommand: CommandFactory = (s) =>
  defineCommand<GlobalArgs>({
    command: 'node <command>',
    describe: 'Node operations: status, checksystem',
    builder: (y: Argv) =>
      y
        .command(
          defineCommand<StatusArgs>({
            command: 'status',
            describe: 'Show tabby-node status: detected IP and how it was chosen, BGP peers (as calicoctl node status)',
            builder: (yy: Argv) =>
              yy.options({
                'run-dir': { type: 'string', describe: 'tabby-node run directory (TABBY_RUN_DIR, default /var/run/tabby)' },
                verbose: { type: 'boolean', default: false, describe: 'also list every interface autodetection considered' },
                output: { alias: 'o', type: 'string', choices: ['table', 'json'], default: 'table' },
              }) as unknown as Argv<StatusArgs>,
            handler: (args: StatusArgs) =>
              s.run({ ...args, allowVersionMismatch: true }, async (ctx) => {
                const o: { runDir?: string; verbose?: boolean; json?: boolean } = { verbose: args.verbose ?? false, json: args.output === 'json' };
                if (args.runDir) o.runDir = args.runDir; // else TABBY_RUN_DIR, else /var/run/tabby
                return emit(ctx, await nodeStatusCommand(o));
              }),
          }),
        )
        .command(
          defineCommand<GlobalArgs>({
            command: 'checksystem',
            describe: 'Check that this host has the kernel features tabby-node needs',
            handler: (args: GlobalArgs) => s.run({ ...args, allowVersionMismatch: true }, async (ctx) => emit(ctx, await checksystemCommand())),
          }),
        )
        .demandCommand(1) as unknown as Argv<GlobalArgs>,
    handler: () => undefined,
  });
