/**
 * A unix-socket server reachable by root only (mode 0600, created under umask 0177 so there is no
 * window with wider permissions). A stale socket file from an earlier run is replaced.
 */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import type { Server } from 'node:net';
import { dirname } from 'node:path';

export async function listenPrivate(srv: Server, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await unlink(path).catch(() => undefined);
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(path, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(path, 0o600);
}
