/**
 * One call for tests that need a Kubernetes datastore: starts the API-faithful test server, writes
 * a kubeconfig for it into a temp dir and opens a KubernetesDatastore on it.
 *
 *   const k = await startK8sDatastore();
 *   t.after(() => k.cleanup());
 *   await k.ds.create(…);           // k.kubeconfig for child processes (KUBECONFIG=…)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubernetesDatastore, type KubernetesDatastore } from '../../datastore/kubernetes.js';
import { startK8sTestServer, writeKubeconfig, type K8sTestServer, type K8sTestServerOptions } from './server.js';

export interface K8sDatastoreHarness {
  srv: K8sTestServer;
  ds: KubernetesDatastore;
  kubeconfig: string;
  cleanup(): Promise<void>;
}

export async function startK8sDatastore(opts: K8sTestServerOptions = {}): Promise<K8sDatastoreHarness> {
  const srv = await startK8sTestServer(opts);
  const dir = await mkdtemp(join(tmpdir(), 'tabby-kube-'));
  try {
    const kubeconfig = await writeKubeconfig(join(dir, 'kubeconfig'), srv);
    const ds = await createKubernetesDatastore({ kubeconfig });
    return {
      srv,
      ds,
      kubeconfig,
      cleanup: async () => {
        await ds.close();
        await srv.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export { startK8sTestServer, writeKubeconfig } from './server.js';
export type { K8sTestServer, K8sTestServerOptions } from './server.js';
