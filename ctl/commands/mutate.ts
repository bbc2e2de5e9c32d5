/** `tabbyctl create|apply|replace -f <file>`: write every document of a manifest. */
import type { Argv } from 'yargs';
import { applyResource, createResource, replaceResource } from '../resources.js';
import type { CommandFactory, FileArgs, GlobalArgs } from './common.js';
import { defineCommand, fileOption, readManifest, runDocuments } from './common.js';

interface CreateArgs extends GlobalArgs, FileArgs {
  skipExists?: boolean;
}

export const createCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'create',
  describe: 'Create resources from a manifest (fails for resources that already exist)',
  builder: (y: Argv) =>
    y.options({
      ...fileOption,
      'skip-exists': { type: 'boolean', default: false, describe: 'skip over and treat as successful any attempts to create an entry that already exists' },
    }),
  handler: (args: CreateArgs) =>
    s.run(args, async (ctx) => {
      const docs = await readManifest(ctx, args.filename);
      const ds = await ctx.datastore();
      return runDocuments(ctx, docs, 'created', (obj) => createResource(ds, obj, { skipExists: args.skipExists ?? false }));
    }),
  });

export const applyCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'apply',
  describe: 'Create or update resources from a manifest',
  builder: (y: Argv) => y.options(fileOption),
  handler: (args: GlobalArgs & FileArgs) =>
    s.run(args, async (ctx) => {
      const docs = await readManifest(ctx, args.filename);
      const ds = await ctx.datastore();
      return runDocuments(ctx, docs, 'applied', (obj) => applyResource(ds, obj));
    }),
  });

export const replaceCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'replace',
  describe: 'Replace existing resources with the ones in a manifest (fails for resources that do not exist)',
  builder: (y: Argv) => y.options(fileOption),
  handler: (args: GlobalArgs & FileArgs) =>
    s.run(args, async (ctx) => {
      const docs = await readManifest(ctx, args.filename);
      const ds = await ctx.datastore();
      return runDocuments(ctx, docs, 'replaced', (obj) => replaceResource(ds, obj));
    }),
  });
