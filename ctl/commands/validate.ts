/** `tabbyctl validate -f <file>`: check manifests without touching a datastore. */
import type { Argv } from 'yargs';
import type { Resource } from '../../api/meta.js';
import { checkPoolOverlap, prepare } from '../resources.js';
import type { CommandFactory, FileArgs, GlobalArgs } from './common.js';
import { defineCommand, fileOption, readManifest, runDocuments } from './common.js';

export const validateCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'validate',
  describe: 'Validate the resources of a manifest (no datastore needed)',
  builder: (y: Argv) => y.options(fileOption),
  handler: (args: GlobalArgs & FileArgs) =>
    s.run(args, async (ctx) => {
      const docs = await readManifest(ctx, args.filename);
      // Pools in one manifest must not overlap each other either.
      const pools: Resource[] = [];
      return runDocuments(ctx, docs, 'validated', async (obj) => {
        const r = prepare(obj);
        checkPoolOverlap(r, pools);
        if (r.kind === 'IPPool') pools.push(r);
      });
    }),
  });
