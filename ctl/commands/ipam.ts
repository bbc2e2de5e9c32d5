/**
 * `tabbyctl ipam show | check | release | configure` (calicoctl ipam). The data comes from
 * ipam/report.ts; this module only parses flags and prints calicoctl's bordered tables and lines.
 */
import { writeFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { Ipam } from '../../ipam/ipam.js';
import {
  BORROWED_HEADERS,
  USAGE_HEADERS,
  type CheckReport,
  borrowedRows,
  checkIpam,
  checkLines,
  configurationRows,
  configureIpam,
  ipInfo,
  loadSnapshot,
  releaseFromReport,
  releaseIp,
  showRows,
  workloadEndpointOwners,
} from '../../ipam/report.js';
import { CtlError } from '../context.js';
import { defineCommand } from './common.js';
import type { CommandFactory, GlobalArgs } from './common.js';

/** A bordered table as calicoctl's tablewriter prints it: centred headers, numbers right-aligned. */
export function formatBorderedTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const centre = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const numeric = /^-?[\d.]+(e[+-]\d+)?$/;
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const out = [rule, line(headers.map((h, i) => centre(h, widths[i]!))), rule];
  for (const r of rows) {
    out.push(line(widths.map((w, i) => (numeric.test(r[i] ?? '') ? (r[i] ?? '').padStart(w) : (r[i] ?? '').padEnd(w)))));
  }
  out.push(rule);
  return out.join('\n') + '\n';
}

interface ShowArgs extends GlobalArgs {
  showBlocks?: boolean;
  showBorrowed?: boolean;
  showConfiguration?: boolean;
  ip?: string;
}

interface CheckArgs extends GlobalArgs {
  output?: string;
}

interface ReleaseArgs extends GlobalArgs {
  ip?: string;
  fromReport?: string;
  force?: boolean;
}

interface ConfigureArgs extends GlobalArgs {
  strictaffinity?: string;
  maxBlocksPerHost?: number;
}

function parseBool(v: string, flag: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new CtlError(`invalid value for ${flag}: ${JSON.stringify(v)}`, 'use true or false');
}

export const ipamCommand: CommandFactory = (s) =>
  defineCommand<GlobalArgs>({
    command: 'ipam',
    describe: 'IP address management: show, check, release, configure',
    builder: (y: Argv) =>
      y
        .command(
          defineCommand<ShowArgs>({
            command: 'show',
            describe: 'Show IP pool and block usage',
            builder: (yy: Argv) =>
              yy.options({
                'show-blocks': { type: 'boolean', describe: 'also show each block' },
                'show-borrowed': { type: 'boolean', describe: 'show addresses borrowed from blocks affine to other nodes' },
                'show-configuration': { type: 'boolean', describe: 'show the IPAM configuration' },
                ip: { type: 'string', describe: 'show who holds this address' },
              }) as unknown as Argv<ShowArgs>,
            handler: (args: ShowArgs) =>
              s.run(args, async (ctx) => {
                const ds = await ctx.datastore();
                const snap = await loadSnapshot(ds);
                if (args.ip !== undefined) {
                  for (const l of ipInfo(snap, args.ip).lines) ctx.out(l);
                } else if (args.showConfiguration) {
                  ctx.out(formatBorderedTable(['PROPERTY', 'VALUE'], configurationRows(snap.config)));
                } else if (args.showBorrowed) {
                  const rows = borrowedRows(snap).map((r) => [r.ip, r.borrowingNode, r.block, r.blockOwner, r.type, r.allocatedTo]);
                  ctx.out(formatBorderedTable(BORROWED_HEADERS, rows));
                } else {
                  ctx.out(formatBorderedTable(USAGE_HEADERS, showRows(snap, { showBlocks: args.showBlocks ?? false }).map((r) => r.cells)));
                }
                return 0;
              }),
          }),
        )
        .command(
          defineCommand<CheckArgs>({
            command: 'check',
            describe: 'Check IPAM for leaked addresses, orphan handles and affinity disagreements',
            builder: (yy: Argv) =>
              yy.options({ output: { alias: 'o', type: 'string', describe: 'write the JSON report to this file' } }) as unknown as Argv<CheckArgs>,
            handler: (args: CheckArgs) =>
              s.run(args, async (ctx) => {
                const ds = await ctx.datastore();
                const report = checkIpam(await loadSnapshot(ds), await workloadEndpointOwners(ds)());
                for (const l of checkLines(report)) ctx.out(l);
                if (args.output) {
                  await writeFile(args.output, JSON.stringify(report, null, 2) + '\n');
                  ctx.out(`Report written to ${args.output}`);
                }
                // calicoctl exits 0 whatever it found; the counts (and the report) carry the result.
                return 0;
              }),
          }),
        )
        .command(
          defineCommand<ReleaseArgs>({
            command: 'release',
            describe: 'Release an address (--ip) or everything a check report found (--from-report)',
            builder: (yy: Argv) =>
              yy.options({
                ip: { type: 'string', describe: 'address to release' },
                'from-report': { type: 'string', describe: 'report written by `ipam check -o`' },
                force: { type: 'boolean', describe: 'accept a report older than an hour' },
              }) as unknown as Argv<ReleaseArgs>,
            handler: (args: ReleaseArgs) =>
              s.run(args, async (ctx) => {
                if ((args.ip === undefined) === (args.fromReport === undefined)) {
                  throw new CtlError('give exactly one of --ip or --from-report');
                }
                const ipam = new Ipam({ datastore: await ctx.datastore() });
                let lines: string[];
                if (args.ip !== undefined) lines = (await releaseIp(ipam, args.ip)).lines;
                else {
                  let report: CheckReport;
                  try {
                    report = JSON.parse(await ctx.readInput(args.fromReport!)) as CheckReport;
                  } catch (err) {
                    throw new CtlError(`cannot read report ${args.fromReport}: ${(err as Error).message}`);
                  }
                  lines = (await releaseFromReport(ipam, report, { force: args.force ?? false })).lines;
                }
                for (const l of lines) ctx.out(l);
                return 0;
              }),
          }),
        )
        .command(
          defineCommand<ConfigureArgs>({
            command: 'configure',
            describe: 'Set IPAM configuration (strict affinity, blocks per host)',
            builder: (yy: Argv) =>
              yy.options({
                strictaffinity: { type: 'string', describe: 'true or false' },
                'max-blocks-per-host': { type: 'number', describe: 'per-node block limit (0 = default of 20)' },
              }) as unknown as Argv<ConfigureArgs>,
            handler: (args: ConfigureArgs) =>
              s.run(args, async (ctx) => {
                const opts: { strictAffinity?: boolean; maxBlocksPerHost?: number } = {};
                if (args.strictaffinity !== undefined) opts.strictAffinity = parseBool(args.strictaffinity, '--strictaffinity');
                if (args.maxBlocksPerHost !== undefined) opts.maxBlocksPerHost = args.maxBlocksPerHost;
                const lines = await configureIpam(new Ipam({ datastore: await ctx.datastore() }), opts);
                for (const l of lines) ctx.out(l);
                return 0;
              }),
          }),
        )
        .demandCommand(1, 'give an ipam subcommand: show, check, release or configure') as unknown as Argv<GlobalArgs>,
    handler: () => undefined,
  });
