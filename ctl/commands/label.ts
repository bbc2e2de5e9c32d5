/** `tabbyctl label <kind> <name> key=value [--overwrite]` / `tabbyctl label <kind> <name> key --remove`. */
import type { Argv } from 'yargs';
import { CtlError } from '../context.js';
import { modifyResource } from '../resources.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';
import { resolveKindArg } from './kinds.js';

interface LabelArgs extends GlobalArgs {
  kind: string;
  name: string;
  label: string;
  overwrite?: boolean;
  remove?: boolean;
  namespace?: string;
}

/** Split `key=value`; with remove, the argument is the bare key. */
export function parseLabelArg(arg: string, remove: boolean): { key: string; value?: string } {
  if (remove) {
    if (arg === '' || arg.includes('=')) throw new CtlError(`invalid label key '${arg}'`, 'with --remove give only the key');
    return { key: arg };
  }
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new CtlError(`invalid label '${arg}'`, 'use key=value');
  return { key: arg.slice(0, eq), value: arg.slice(eq + 1) };
}

export const labelCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'label <kind> <name> <label>',
  describe: 'Set (key=value) or remove (key --remove) a label on a resource',
  builder: (y: Argv) =>
    y
      .positional('kind', { type: 'string', demandOption: true })
      .positional('name', { type: 'string', demandOption: true })
      .positional('label', { type: 'string', demandOption: true, describe: 'key=value, or key with --remove' })
      .options({
        overwrite: { type: 'boolean', default: false, describe: 'change the value of a label that is already set' },
        remove: { type: 'boolean', default: false, describe: 'remove the label' },
        namespace: { alias: 'n', type: 'string' },
      }),
  handler: (args: LabelArgs) =>
    s.run(args, async (ctx) => {
      const info = resolveKindArg(args.kind);
      const remove = args.remove ?? false;
      const { key, value } = parseLabelArg(String(args.label), remove);
      const ds = await ctx.datastore();
      await modifyResource(
        ds,
        info.kind,
        args.name,
        (obj) => {
          const labels = { ...(obj.metadata.labels ?? {}) };
          if (remove) {
            if (!(key in labels)) throw new CtlError(`can not remove label ${key} from ${args.kind} ${args.name}: label not found`);
            delete labels[key];
          } else {
            const old = labels[key];
            if (old !== undefined && old !== value && !args.overwrite) {
              throw new CtlError(`failed to set label ${key} on ${args.kind} ${args.name}: it is already set to '${old}'`, 'use --overwrite to change it');
            }
            labels[key] = value ?? '';
          }
          obj.metadata.labels = labels;
          return obj;
        },
        args.namespace,
      );
      ctx.out(remove ? `Successfully removed label ${key} from ${args.kind} ${args.name}` : `Successfully set label ${key} on ${args.kind} ${args.name}`);
      return 0;
    }),
  });
