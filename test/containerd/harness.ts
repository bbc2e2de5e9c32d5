/**
 * containerd as a real CNI caller, reusable by tests and the demo:
 *   - buildBusyboxImage(): an OCI image made locally from Debian's busybox-static (no registry);
 *   - startContainerd(): Debian containerd with a private root/state/socket under a temp dir;
 *   - installCni(): tabby + tabby-ipam (+ Debian plugins) into /opt/cni/bin and a conflist into
 *     /etc/cni/net.d — the fixed paths `ctr run --cni` reads — backing up and restoring whatever
 *     was there;
 *   - ctr helpers to run containers with --cni, exec in them and stop them.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const IMAGE_REF = 'docker.io/tabby/busybox:test';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ping', 'ip', 'sleep', 'cat', 'ls', 'ifconfig', 'route', 'wget', 'nc', 'echo', 'hostname', 'true'];

/** Reason to skip, or undefined. */
export function containerdMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (containerd)';
  for (const [bin, pkg] of [['/usr/bin/containerd', 'containerd'], ['/usr/bin/ctr', 'containerd'], ['/usr/sbin/runc', 'runc'], [BUSYBOX, 'busybox-static']] as const) {
    if (!existsSync(bin)) return `needs ${bin} (Debian package ${pkg})`;
  }
  try {
    if (!execFileSync('file', ['-L', BUSYBOX], { encoding: 'utf8' }).includes('statically linked')) return `${BUSYBOX} is not static (install busybox-static)`;
  } catch {
    // no `file` tool: assume busybox-static as installed by scripts/install-deps.sh
  }
  return undefined;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** An OCI image layout tarball (one uncompressed layer: /bin/busybox + applet symlinks). */
export async function buildBusyboxImage(dir: string, ref = IMAGE_REF): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp', 'root']) await mkdir(join(rootfs, d), { recursive: true });
  await writeFile(join(rootfs, 'bin/busybox'), readFileSync(BUSYBOX), { mode: 0o755 });
  for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  const layer = execFileSync('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '--sort=name', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  const layerDigest = sha256(layer);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layer.length }],
  }));
  const layout = join(dir, 'layout');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  for (const b of [layer, config, manifest]) await writeFile(join(layout, 'blobs/sha256', sha256(b)), b);
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${sha256(manifest)}`,
      size: manifest.length,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.split(':').pop() ?? 'test' },
    }],
  }));
  const tarball = join(dir, 'busybox-oci.tar');
  execFileSync('tar', ['-C', layout, '-cf', tarball, '.']);
  return tarball;
}

export interface Containerd {
  dir: string;
  socket: string;
  namespace: string;
  /** `ctr -a <socket> -n <namespace> …` → stdout. */
  ctr(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** Start `ctr run --rm --cni` in the background (ctr calls CNI DEL itself when the task exits). */
  runDetached(name: string, cmd: string[]): ChildProcess;
  /** Wait until the task is RUNNING. */
  waitRunning(name: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function exec(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

export async function startContainerd(opts: { namespace?: string } = {}): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), 'tcn-containerd-'));
  const socket = join(dir, 'containerd.sock');
  const namespace = opts.namespace ?? 'tabby-test';
  await writeFile(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[debug]',
    `  address = "${socket}.debug"`,
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n'));
  const daemon = spawn('containerd', ['--config', join(dir, 'config.toml'), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr?.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-4000)));
  const ctr = (args: string[], o: { timeoutMs?: number } = {}) => exec('ctr', ['-a', socket, '-n', namespace, ...args], o.timeoutMs);
  const runs: ChildProcess[] = [];
  const stop = async () => {
    try {
      // Kill the tasks first: each foreground `ctr run --rm --cni` then runs CNI DEL and exits.
      for (const line of (await ctr(['tasks', 'ls', '-q'], { timeoutMs: 5000 })).split('\n').filter(Boolean)) {
        await ctr(['tasks', 'kill', '-s', 'KILL', line]).catch(() => undefined);
      }
      const end = Date.now() + 10_000;
      while (runs.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      for (const c of runs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      for (const line of (await ctr(['containers', 'ls', '-q'], { timeoutMs: 5000 })).split('\n').filter(Boolean)) {
        await ctr(['tasks', 'delete', '-f', line]).catch(() => undefined);
        await ctr(['containers', 'delete', line]).catch(() => undefined);
      }
    } catch {
      // daemon already gone
    }
    if (daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          daemon.kill('SIGKILL');
          r();
        }, 5000);
        daemon.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    // Mounts left by a killed shim would make rm fail; unmount anything under our dir first.
    try {
      const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir)).reverse();
      for (const m of mounts) execFileSync('umount', ['-l', m]);
    } catch {
      // nothing mounted
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (daemon.exitCode !== null) {
      await stop();
      throw new Error(`containerd exited: ${log}`);
    }
    try {
      await exec('ctr', ['-a', socket, 'version'], 3000);
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`containerd did not answer on ${socket}: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    dir,
    socket,
    namespace,
    ctr,
    runDetached(name, cmd) {
      const c = spawn('ctr', ['-a', socket, '-n', namespace, 'run', '--rm', '--cni', IMAGE_REF, name, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      runs.push(c);
      return c;
    },
    async waitRunning(name, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const out = await ctr(['tasks', 'ls']).catch(() => '');
        if (out.split('\n').some((l) => l.startsWith(name + ' ') && l.includes('RUNNING'))) return;
        if (Date.now() > end) throw new Error(`task ${name} not running after ${timeoutMs} ms: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop,
  };
}

export interface CniInstall {
  confPath: string;
  restore(): Promise<void>;
}

const CNI_CONF_DIR = '/etc/cni/net.d';
const CNI_BIN_DIR = '/opt/cni/bin';

/**
 * Install our plugins and one conflist at the fixed paths `ctr run --cni` uses. Existing
 * directories are moved aside and put back by restore().
 */
export async function installCni(conflist: Record<string, unknown>, debianPlugins: string[] = ['host-local', 'portmap', 'bandwidth', 'loopback']): Promise<CniInstall> {
  const tag = `.tabby-backup-${process.pid}`;
  const moved: Array<[string, string]> = [];
  for (const d of [CNI_CONF_DIR, CNI_BIN_DIR]) {
    if (existsSync(d)) {
      await rename(d, d + tag);
      moved.push([d + tag, d]);
    }
  }
  const created: string[] = [];
  for (const d of [CNI_CONF_DIR, CNI_BIN_DIR]) {
    if (!existsSync(dirname(d))) created.push(dirname(d));
    await mkdir(d, { recursive: true });
  }
  await symlink(join(ROOT, 'bin/tabby'), join(CNI_BIN_DIR, 'tabby'));
  await symlink(join(ROOT, 'bin/tabby-ipam'), join(CNI_BIN_DIR, 'tabby-ipam'));
  for (const p of debianPlugins) await symlink(join('/usr/lib/cni', p), join(CNI_BIN_DIR, p));
  const confPath = join(CNI_CONF_DIR, '10-tabby.conflist');
  await writeFile(confPath, JSON.stringify(conflist, null, 2));
  return {
    confPath,
    async restore() {
      await rm(CNI_CONF_DIR, { recursive: true, force: true });
      await rm(CNI_BIN_DIR, { recursive: true, force: true });
      for (const [from, to] of moved) await rename(from, to);
      for (const d of created) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/** The IPv4 address of eth0 inside a running container. */
export async function containerIp(cd: Containerd, name: string): Promise<string> {
  const out = await cd.ctr(['tasks', 'exec', '--exec-id', `ip-${Date.now()}`, name, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out);
  if (!m?.[1]) throw new Error(`no IPv4 address on eth0 in ${name}: ${out}`);
  return m[1];
}

export async function readMaybe(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}
