/** The tabby-ipam file logger (pino JSON lines), shared by the executable and the in-process path. */
import { createLogger, type Logger } from '../../lib/log.js';

export function ipamFileLogger(file: string, level: string): Logger {
  try {
    return createLogger({ name: 'tabby-ipam', file, level });
  } catch {
    // Unwritable log path: stderr is the only other place the runtime may keep.
    return createLogger({ name: 'tabby-ipam', level });
  }
}
