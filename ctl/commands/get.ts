/** `tabbyctl get <kind> [name] [-o ps|wide|yaml|json|custom-columns=A,B]` (or `get -f <file>`). */
import type { Argv } from 'yargs';
import type { Resource } from '../../api/meta.js';
import type { Datastore } from '../../datastore/types.js';
import { NotFoundError } from '../../datastore/types.js';
import type { CtlContext } from '../context.js';
import { CtlError } from '../context.js';
import { describeDocument } from '../manifest.js';
import type { Column, ColumnContext, Printable } from '../output.js';
import { columnsFor, customColumns, formatJson, formatResourceTable, formatYaml, listOf } from '../output.js';
import type { CommandFactory, FileArgs, GlobalArgs } from './common.js';
import { defineCommand, fileOption, readManifest } from './common.js';
import { resolveKindArg } from './kinds.js';

interface GetArgs extends GlobalArgs, FileArgs {
  kind?: string;
  name?: string;
  output: string;
  namespace?: string;
  allNamespaces?: boolean;
}

type Format = { type: 'table'; wide: boolean; custom?: string[] } | { type: 'yaml' } | { type: 'json' };

export function parseFormat(o: string): Format {
  switch (o) {
    case 'ps':
      return { type: 'table', wide: false };
    case 'wide':
      return { type: 'table', wide: true };
    case 'yaml':
    case 'yml':
      return { type: 'yaml' };
    case 'json':
      return { type: 'json' };
  }
  if (o.startsWith('custom-columns=')) {
    const cols = o.slice('custom-columns='.length).split(',').filter((c) => c !== '');
    if (cols.length > 0) return { type: 'table', wide: true, custom: cols };
  }
  throw new CtlError(`unrecognized output format '${o}'`, 'use ps, wide, yaml, json or custom-columns=A,B');
}

async function columnContext(ds: Datastore, kind: string, wide: boolean): Promise<ColumnContext> {
  if (kind !== 'Node' || !wide) return {};
  try {
    const cfg = await ds.get('BGPConfiguration', 'default');
    const asn = (cfg.spec as { asNumber?: number } | undefined)?.asNumber;
    return asn === undefined ? {} : { defaultASNumber: asn };
  } catch (e) {
    if (e instanceof NotFoundError) return {};
    throw e;
  }
}

const NAMESPACE: Column = { header: 'NAMESPACE', value: (o) => o.metadata.namespace ?? '' };

async function print(
  ctx: CtlContext,
  ds: Datastore,
  fmt: Format,
  kind: string | undefined,
  objs: Resource[],
  asList: Printable | undefined,
  withNamespace = false,
): Promise<void> {
  if (fmt.type === 'yaml' || fmt.type === 'json') {
    const v: Printable = asList ?? (objs.length === 1 && objs[0] ? objs[0] : listOf(objs));
    ctx.io.out(fmt.type === 'yaml' ? formatYaml(v) : formatJson(v));
    return;
  }
  // Tables print one block per kind, in the order the kinds first appear.
  const kinds = kind ? [kind] : [...new Set(objs.map((o) => o.kind))];
  for (const [i, k] of kinds.entries()) {
    const set = columnsFor(k);
    const picked: readonly Column[] = fmt.custom ? customColumns(k, fmt.custom) : fmt.wide ? set.wide : set.default;
    const columns = withNamespace ? [NAMESPACE, ...picked] : picked;
    if (i > 0) ctx.io.out('\n');
    ctx.io.out(formatResourceTable(objs.filter((o) => o.kind === k), columns, await columnContext(ds, k, fmt.wide)));
  }
}

export const getCommand: CommandFactory = (s) =>
  defineCommand({
  command: 'get [kind] [name]',
  describe: 'Display resources (all of a kind, one by name, or those named in a manifest)',
  builder: (y: Argv) =>
    y
      .positional('kind', { type: 'string', describe: 'resource kind (ippool, bgppeer, node, bgpconfig, felixconfig, ...)' })
      .positional('name', { type: 'string', describe: 'resource name (omit to list all)' })
      .options({
        ...fileOption,
        output: { alias: 'o', type: 'string', default: 'ps', describe: 'ps | wide | yaml | json | custom-columns=A,B' },
        namespace: { alias: 'n', type: 'string', describe: 'namespace (namespaced kinds only; default "default")' },
        'all-namespaces': { alias: 'A', type: 'boolean', default: false, describe: 'all namespaces (namespaced kinds only)' },
      }),
  handler: (args: GetArgs) =>
    s.run(args, async (ctx) => {
      const fmt = parseFormat(args.output);
      if (args.filename !== undefined) {
        const docs = await readManifest(ctx, args.filename);
        const ds = await ctx.datastore();
        const found: Resource[] = [];
        let code = 0;
        for (const doc of docs) {
          if (!doc.resource) {
            ctx.err(`Hit error: ${describeDocument(doc)}: ${doc.error ?? 'invalid'}`);
            code = 1;
            continue;
          }
          try {
            found.push(await ds.get(doc.resource.kind, doc.resource.metadata.name, doc.resource.metadata.namespace));
          } catch (e) {
            if (!(e instanceof NotFoundError)) throw e;
            ctx.err(`Hit error: resource does not exist: ${doc.resource.kind}(${doc.resource.metadata.name})`);
            code = 1;
          }
        }
        if (found.length > 0) await print(ctx, ds, fmt, undefined, found, undefined);
        return code;
      }
      if (args.kind === undefined) throw new CtlError('get needs a resource kind or -f <file>', 'e.g. tabbyctl get ippool -o wide');
      const info = resolveKindArg(args.kind);
      const ds = await ctx.datastore();
      if (args.name !== undefined) {
        let obj: Resource;
        try {
          obj = await ds.get(info.kind, args.name, args.namespace);
        } catch (e) {
          if (e instanceof NotFoundError) throw new CtlError(`Failed to get resources: resource does not exist: ${info.kind}(${args.name})`);
          throw e;
        }
        await print(ctx, ds, fmt, info.kind, [obj], undefined);
        return 0;
      }
      const allNs = info.namespaced && args.namespace === undefined && (args.allNamespaces ?? false);
      const namespace = info.namespaced && !allNs ? (args.namespace ?? 'default') : undefined;
      const res = await ds.list(info.kind, namespace === undefined ? {} : { namespace });
      await print(ctx, ds, fmt, info.kind, res.items, listOf(res.items, info.kind, res.revision), allNs);
      return 0;
    }),
  });
