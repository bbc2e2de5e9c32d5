/** `tabbyctl patch <kind> <name> -p '<JSON merge patch>'` (RFC 7386, applied to the whole object). */
import type { Argv } from 'yargs';
import type { Resource } from '../../api/meta.js';
import { CtlError } from '../context.js';
import { mergePatch } from '../manifest.js';
import { modifyResource } from '../resources.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';
import { resolveKindArg } from './kinds.js';

interface PatchArgs extends GlobalArgs {
  kind: string;
  name: string;
  patch: string;
  namespace?: string;
}

/** Parse the -p argument; it must be a JSON object. */
export function parsePatch(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CtlError(`patch is not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CtlError('patch must be a JSON object, e.g. {"spec":{"disabled":true}}');
  return v as Record<string, unknown>;
}

/** Apply a merge patch to a stored object; identity fields (kind, apiVersion, name) cannot change. */
export function patchResource(current: Resource, patch: Record<string, unknown>): Resource {
  const next = mergePatch(current, patch) as Resource;
  if (next.kind !== current.kind || next.apiVersion !== current.apiVersion) throw new CtlError('patch must not change kind or apiVersion');
  if (next.metadata?.name !== current.metadata.name) throw new CtlError('patch must not change metadata.name');
  return next;
}

export const patchCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'patch <kind> <name>',
  describe: 'Update fields of a resource with a JSON merge patch',
  builder: (y: Argv) =>
    y
      .positional('kind', { type: 'string', demandOption: true })
      .positional('name', { type: 'string', demandOption: true })
      .options({
        patch: { alias: 'p', type: 'string', demandOption: true, describe: 'JSON merge patch, e.g. \'{"spec":{"disabled":true}}\'' },
        namespace: { alias: 'n', type: 'string' },
      }),
  handler: (args: PatchArgs) =>
    s.run(args, async (ctx) => {
      const info = resolveKindArg(args.kind);
      const patch = parsePatch(args.patch);
      const ds = await ctx.datastore();
      await modifyResource(ds, info.kind, args.name, (obj) => patchResource(obj, patch), args.namespace);
      ctx.out(`Successfully patched 1 '${info.kind}' resource`);
      return 0;
    }),
  });
