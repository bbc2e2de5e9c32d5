/** Entry of `bin/tabby-bgp -c FILE`: the standalone BGP speaker daemon. */
import { createLogger } from '../lib/log.js';
import { errorMessage, TabbyError } from '../lib/errors.js';
import { runDaemon } from './daemon.js';
import { EXAMPLE_CONFIG } from './daemon/config.js';

const USAGE = `usage: tabby-bgp -c FILE

Runs the tabby BGP speaker alone, configured by a YAML/JSON file such as:

${EXAMPLE_CONFIG.replace(/^/gm, '  ')}
SIGHUP reloads the file; SIGTERM closes the sessions with Cease and exits.
Query it with: tabbyctl bgp status --socket PATH / tabbyctl bgp routes --socket PATH [PREFIX]
`;

function parseArgs(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    if (a === '-c' || a === '--config') return argv[i + 1];
    if (a?.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

const file = parseArgs(process.argv.slice(2));
if (!file) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const log = createLogger({ name: 'tabby-bgp' });
runDaemon({ configFile: file, logger: log }).catch((err: unknown) => {
  log.fatal({ err: errorMessage(err), code: err instanceof TabbyError ? err.code : undefined }, 'tabby-bgp failed to start');
  process.stderr.write(`tabby-bgp: ${errorMessage(err)}\n`);
  process.exit(1);
});
