/**
 * The Kubernetes API test server as a process (for the local cluster harness: `tabbyctl cluster up
 * --datastore kubernetes` without --kubeconfig runs it inside the fabric namespace, as it runs etcd).
 *
 *   node --import tsx test/k8s-server/main.ts --host 172.31.254.3 --port 23891 --kubeconfig <file>
 *
 * Writes a kubeconfig for itself, prints one line when it listens, stops on SIGTERM/SIGINT. The
 * store lives in memory only (a restart starts empty).
 */
import { parseArgs } from 'node:util';
import { startK8sTestServer, writeKubeconfig } from './server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, kubeconfig: { type: 'string' } } });
  if (values.kubeconfig === undefined) throw new Error('--kubeconfig <file> is required (the server writes it)');
  const opts: Parameters<typeof startK8sTestServer>[0] = {};
  if (values.host !== undefined) opts.host = values.host;
  if (values.port !== undefined) opts.port = Number(values.port);
  const srv = await startK8sTestServer(opts);
  await writeKubeconfig(values.kubeconfig, srv);
  process.stdout.write(`kubernetes API test server on ${srv.url}; kubeconfig ${values.kubeconfig}\n`);
  const stop = (): void => void srv.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`k8s test server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
