/**
 * A command group whose issue has not landed yet: `tabbyctl <group> ...` says so and exits non-zero.
 * The helper implementing a group replaces its module (ctl/commands/<group>.ts) with the real one.
 */
import type { Argv } from 'yargs';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';

export function notImplementedGroup(group: string, describe: string, issue: string): CommandFactory {
  return (s) =>
  defineCommand<GlobalArgs>({
    command: `${group} [args..]`,
    describe: `${describe} (not implemented yet)`,
    builder: (y: Argv) => y.strict(false) as Argv<GlobalArgs>,
    handler: (args: GlobalArgs) =>
      s.run(args, async (ctx) => {
        ctx.err(`tabbyctl ${group}: not implemented yet (comes with the ${issue} issue)`);
        return 3;
      }),
  });
}
