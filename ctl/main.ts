/** tabbyctl executable: binds the in-process CLI (cli.ts) to the real process. */
import { hideBin } from 'yargs/helpers';
import { runCtl } from './cli.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

const code = await runCtl(hideBin(process.argv), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  readStdin,
  env: process.env,
});
process.exitCode = code;
