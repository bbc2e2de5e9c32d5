/**
 * tabbyctl's command line, runnable in-process: `runCtl(argv, io)` parses with yargs, runs one
 * command and resolves to the exit code. main.ts binds it to the real process.
 */
import yargs from 'yargs';
import { COMMANDS } from './commands/index.js';
import type { GlobalArgs, Session } from './commands/common.js';
import type { CtlIO } from './context.js';
import { CtlContext, DEFAULT_CONFIG_PATH } from './context.js';
import { reason } from './resources.js';

export async function runCtl(argv: readonly string[], io: CtlIO): Promise<number> {
  let code = 0;
  const session: Session = {
    async run(args: GlobalArgs, action) {
      const ctx = new CtlContext(io, {
        config: args.config,
        allowVersionMismatch: args.allowVersionMismatch ?? false,
      });
      try {
        code = await action(ctx);
      } catch (e) {
        ctx.err(reason(e));
        code = 1;
      } finally {
        await ctx.close().catch(() => undefined);
      }
    },
  };
  const y = yargs([...argv])
    .scriptName('tabbyctl')
    .usage('$0 <command> [options]\n\nManage tabby (Calico-compatible projectcalico.org/v3) resources.')
    .options({
      config: { alias: 'c', type: 'string', describe: `datastore config file (default ${DEFAULT_CONFIG_PATH} when present, else the environment; DATASTORE_TYPE/ETCD_ENDPOINTS/KUBECONFIG override its fields)`, global: true },
      'allow-version-mismatch': { type: 'boolean', default: false, describe: 'run even if the client and cluster versions differ', global: true },
    })
    .strict()
    .demandCommand(1, 'give a command (see tabbyctl --help)')
    .recommendCommands()
    .version(false)
    .help()
    .alias('h', 'help')
    .wrap(null)
    .exitProcess(false)
    .fail((msg, err) => {
      io.err(`${msg || reason(err)}\nRun 'tabbyctl --help' for usage.\n`);
      code = 1;
    });
  for (const factory of COMMANDS) y.command(factory(session));
  await y.parseAsync();
  return code;
}
