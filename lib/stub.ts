/** For executables whose issue has not landed yet: say so plainly and exit non-zero. */
export function notImplemented(program: string, what: string): never {
  process.stderr.write(`${program}: not implemented yet (${what})\n`);
  process.exit(3);
}
