/**
 * The one place that binds libc through koffi. koffi (a native addon) loads on the first call, so
 * importing a module that may need a syscall costs nothing until it makes one. Callers declare the
 * functions they use by C signature; each signature is bound once per process.
 */
import { createRequire } from 'node:module';

interface KoffiLib {
  func(signature: string): unknown;
}
interface Koffi {
  load(name: string): KoffiLib;
  errno(): number;
}

const requireCjs = createRequire(import.meta.url);
let koffi: Koffi | undefined;
let lib: KoffiLib | undefined;
const bound = new Map<string, unknown>();

function load(): { koffi: Koffi; lib: KoffiLib } {
  if (!koffi || !lib) {
    koffi = requireCjs('koffi') as Koffi;
    lib = koffi.load('libc.so.6');
  }
  return { koffi, lib };
}

/** A libc function by its C signature, e.g. `libcFunc<(fd: number) => number>('int close(int)')`. */
export function libcFunc<F>(signature: string): F {
  let fn = bound.get(signature);
  if (fn === undefined) {
    fn = load().lib.func(signature);
    bound.set(signature, fn);
  }
  return fn as F;
}

/** errno of the last libc call made through koffi on this thread. */
export function libcErrno(): number {
  return load().koffi.errno();
}
