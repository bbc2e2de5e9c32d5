/**
 * Base of every error tabby throws on purpose. `code` is stable (tests and users match on it);
 * `hint` says what to do about it. Components derive their own classes (datastore, CNI, BGP, netlink).
 */
export class TabbyError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  constructor(code: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }

  /** One line for a terminal: the message and, when present, what to do. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

/** Narrow an unknown thrown value to a message without losing non-Error throws. */
export function errorMessage(err: unknown): string {
  if (err instanceof TabbyError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
