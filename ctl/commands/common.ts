/**
 * Shared plumbing of tabbyctl commands. A command module exports a factory `(s: Session) =>
 * CommandModule`; `s.run` turns the parsed arguments into a CtlContext, runs the action, prints a
 * thrown error as one line and records the exit code. To add a command group (ipam, node, bgp,
 * cluster), put a module in ctl/commands/ and list it in ctl/commands/index.ts.
 */
import type { CommandModule } from 'yargs';
import type { Resource } from '../../api/meta.js';
import { UnavailableError } from '../../datastore/types.js';
import type { CtlContext } from '../context.js';
import { describeDocument, parseManifest } from '../manifest.js';
import type { ManifestDocument } from '../manifest.js';
import { partialLine, singleKind, successLine } from '../output.js';
import { reason } from '../resources.js';

export interface GlobalArgs {
  config?: string;
  allowVersionMismatch?: boolean;
}

export interface Session {
  /** Run an action with a context built from the global options; its return value is the exit code. */
  run(args: GlobalArgs, action: (ctx: CtlContext) => Promise<number>): Promise<void>;
}

export type CommandFactory = (s: Session) => CommandModule;

/** Type a command module by its own arguments, then erase that for the registry. */
export function defineCommand<A>(m: CommandModule<object, A>): CommandModule {
  return m as unknown as CommandModule;
}

export interface FileArgs {
  filename?: string;
}

export const fileOption = {
  filename: { alias: 'f', type: 'string', describe: 'manifest file (YAML or JSON, multi-document); "-" reads stdin' },
} as const;

/** Read and parse `-f`; a missing -f is a usage error. */
export async function readManifest(ctx: CtlContext, file: string | undefined): Promise<ManifestDocument[]> {
  if (file === undefined || file === '') throw new Error('missing -f <file> (use "-f -" for stdin)');
  const docs = parseManifest(await ctx.readInput(file));
  if (docs.length === 0) throw new Error(`no resources found in ${file === '-' ? 'stdin' : file}`);
  return docs;
}

export type DocAction = (obj: Resource, doc: ManifestDocument) => Promise<unknown>;

/**
 * Run `action` for every document, in order. Bad documents (parse/envelope errors, or the action
 * failing) get one `Hit error:` line each on stderr and nothing written; the summary goes to stdout
 * as calicoctl prints it. Exit code 0 only when every document succeeded.
 */
export async function runDocuments(ctx: CtlContext, docs: ManifestDocument[], verb: string, action: DocAction): Promise<number> {
  const failed: string[] = [];
  const okIndexes: number[] = [];
  let unavailable: string | undefined;
  for (const doc of docs) {
    if (doc.resource === undefined) {
      failed.push(`${describeDocument(doc)}: ${doc.error ?? 'invalid'}`);
      continue;
    }
    if (unavailable !== undefined) {
      // Do not wait out the datastore timeout once per document.
      failed.push(`${describeDocument(doc)}: not attempted: ${unavailable}`);
      continue;
    }
    try {
      await action(doc.resource, doc);
      okIndexes.push(doc.index);
    } catch (e) {
      const why = reason(e).replace(/\s*\n\s*/g, ' ');
      failed.push(`${describeDocument(doc)}: ${why}`);
      if (e instanceof UnavailableError) unavailable = why;
    }
  }
  const kind = singleKind(docs.flatMap((d) => (d.kind === undefined ? [] : [d.kind])));
  if (failed.length === 0) {
    ctx.out(successLine(verb, docs.length, kind));
    return 0;
  }
  if (okIndexes.length > 0) {
    const prefix = okIndexes.every((idx, i) => idx === i + 1);
    ctx.out(partialLine(verb, okIndexes.length, docs.length, kind, prefix));
  }
  for (const f of failed) ctx.err(`Hit error: ${f}`);
  return 1;
}
