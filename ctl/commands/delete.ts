/** `tabbyctl delete -f <file>` or `tabbyctl delete <kind> <name>`. */
import type { Argv } from 'yargs';
import { CtlError } from '../context.js';
import { deleteResource } from '../resources.js';
import type { CommandFactory, FileArgs, GlobalArgs } from './common.js';
import { defineCommand, fileOption, readManifest, runDocuments } from './common.js';
import { resolveKindArg } from './kinds.js';

interface DeleteArgs extends GlobalArgs, FileArgs {
  kind?: string;
  name?: string;
  skipNotExists?: boolean;
  namespace?: string;
}

export const deleteCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'delete [kind] [name]',
  describe: 'Delete the resources of a manifest, or one resource by kind and name',
  builder: (y: Argv) =>
    y
      .positional('kind', { type: 'string', describe: 'resource kind (ippool, bgppeer, ...)' })
      .positional('name', { type: 'string', describe: 'resource name' })
      .options({
        ...fileOption,
        'skip-not-exists': { type: 'boolean', default: false, describe: 'treat deleting a resource that does not exist as success' },
        namespace: { alias: 'n', type: 'string', describe: 'namespace (namespaced kinds only)' },
      }),
  handler: (args: DeleteArgs) =>
    s.run(args, async (ctx) => {
      const skipNotExists = args.skipNotExists ?? false;
      if (args.filename !== undefined) {
        if (args.kind !== undefined) throw new CtlError('give either -f <file> or <kind> <name>, not both');
        const docs = await readManifest(ctx, args.filename);
        const ds = await ctx.datastore();
        return runDocuments(ctx, docs, 'deleted', (obj) =>
          deleteResource(ds, obj.kind, obj.metadata.name, {
            skipNotExists,
            ...(obj.metadata.namespace === undefined ? {} : { namespace: obj.metadata.namespace }),
          }),
        );
      }
      if (args.kind === undefined || args.name === undefined) throw new CtlError('delete needs -f <file> or <kind> <name>');
      const info = resolveKindArg(args.kind);
      const ds = await ctx.datastore();
      await deleteResource(ds, info.kind, args.name, {
        skipNotExists,
        ...(args.namespace === undefined ? {} : { namespace: args.namespace }),
      });
      ctx.out(`Successfully deleted 1 '${info.kind}' resource(s)`);
      return 0;
    }),
  });
