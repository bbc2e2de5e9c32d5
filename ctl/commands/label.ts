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

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes label key syntax: `[prefix/]name`, prefix a DNS subdomain (≤253), name ≤63 alphanumerics, `-_.`. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key prefix '${prefix}' must be a DNS subdomain`;
  if (!LABEL_NAME.test(name)) return `label key '${key}' must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

/** Split `key=value`; with remove, the argument is the bare key. Key and value follow Kubernetes label syntax. */
export function parseLabelArg(arg: string, remove: boolean): { key: string; value?: string } {
  if (remove) {
    if (arg === '' || arg.includes('=')) throw new CtlError(`invalid label key '${arg}'`, 'with --remove give only the key');
    return { key: arg };
  }
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new CtlError(`invalid label '${arg}'`, 'use key=value');
  const key = arg.slice(0, eq);
  const value = arg.slice(eq + 1);
  const bad = labelKeyProblem(key);
  if (bad) throw new CtlError(bad);
  if (value !== '' && !LABEL_NAME.test(value)) {
    throw new CtlError(`label value '${value}' must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`);
  }
  return { key, value };
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
