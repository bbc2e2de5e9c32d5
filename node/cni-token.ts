/**
 * Keeps the CNI plugin's Kubernetes token fresh, as calico-node does for calico-cni-plugin.
 *
 * install-cni writes /etc/cni/net.d/tabby-kubeconfig once, at pod start; tokens expire, so tabby-node
 * asks the API server for a new token of the `tabby-cni-plugin` ServiceAccount (TokenRequest) and
 * rewrites the kubeconfig (temp file 0600 + rename) once less than a third of the current token's
 * lifetime is left. Errors and refusals (403 Forbidden: no RBAC for serviceaccounts/token; 404: no
 * such ServiceAccount or no TokenRequest API) are retried with a doubling back-off while the current
 * token stays in use; once no valid TokenRequest token is left, the kubeconfig gets tabby-node's own
 * mounted token, re-read every check interval (the kubelet rotates it), until TokenRequest works again.
 *
 * Pure parts (when to refresh, back-off, configuration) are plain functions; CniTokenRefresher runs
 * them over injected I/O (request, mounted token, kubeconfig writer, clock), so tests drive it with a
 * fake clock. node/cni-token-k8s.ts supplies the real I/O. Tokens never reach a log line.
 */
import { TabbyError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { NodeConfigError, parseBool, parseDurationSec } from './config.js';

/** The ServiceAccount whose token the CNI plugin uses (deploy/tabby.yaml; RBAC allows TokenRequest for it only). */
export const CNI_SERVICE_ACCOUNT = 'tabby-cni-plugin';
export const DEFAULT_TOKEN_EXPIRATION_SEC = 24 * 3600;
/** kube-apiserver refuses TokenRequests for shorter tokens. */
export const MIN_TOKEN_EXPIRATION_SEC = 600;
export const DEFAULT_CHECK_INTERVAL_SEC = 60;
/** Refresh once less than this fraction of the token's lifetime is left. */
export const REFRESH_FRACTION = 1 / 3;

/** A token the API server issued. */
export interface IssuedToken {
  token: string;
  /** status.expirationTimestamp, ms since the epoch. */
  expiresAtMs: number;
}

export class CniTokenError extends TabbyError {
  /** HTTP status of the API server's answer; undefined for transport errors. */
  readonly status: number | undefined;
  constructor(code: string, message: string, opts: { hint?: string; cause?: unknown; status?: number } = {}) {
    super(code, message, opts);
    this.status = opts.status;
  }
}

/** The API server will not issue the token: RBAC (403), no such ServiceAccount or no TokenRequest API (404, 405). */
export function isRefusal(status: number | undefined): boolean {
  return status === 403 || status === 404 || status === 405;
}

export interface CniTokenPolicy {
  /** spec.expirationSeconds asked for (the server may shorten it; its expirationTimestamp counts). */
  expirationSec: number;
  /** Longest sleep of the loop, and how often the mounted token is re-read while falling back. */
  checkIntervalMs: number;
  /** First retry delay after an error; doubles per failure. */
  minRetryMs: number;
  /** Longest retry delay. */
  maxRetryMs: number;
}

export const DEFAULT_POLICY: CniTokenPolicy = {
  expirationSec: DEFAULT_TOKEN_EXPIRATION_SEC,
  checkIntervalMs: DEFAULT_CHECK_INTERVAL_SEC * 1000,
  minRetryMs: 5_000,
  maxRetryMs: 300_000,
};

/** When a token issued at issuedAtMs and expiring at expiresAtMs is refreshed: with a third of its lifetime left. */
export function refreshDueAt(issuedAtMs: number, expiresAtMs: number, fraction = REFRESH_FRACTION): number {
  return expiresAtMs - Math.max(0, expiresAtMs - issuedAtMs) * fraction;
}

/** Delay before retry number `failures` (1 = first): minRetryMs doubling, capped at maxRetryMs. */
export function retryDelayMs(failures: number, p: Pick<CniTokenPolicy, 'minRetryMs' | 'maxRetryMs'>): number {
  return Math.min(p.maxRetryMs, p.minRetryMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

/** Claims of a JWT, read without verifying it (only to learn exp/sub of a token tabby holds); undefined when not a JWT. */
export function jwtClaims(token: string): { exp?: number; sub?: string } | undefined {
  const payload = token.split('.')[1];
  if (token.split('.').length !== 3 || !payload) return undefined;
  try {
    const c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (!c || typeof c !== 'object') return undefined;
    const out: { exp?: number; sub?: string } = {};
    if (typeof c.exp === 'number') out.exp = c.exp;
    if (typeof c.sub === 'string') out.sub = c.sub;
    return out;
  } catch {
    return undefined;
  }
}

/** Expiry (ms) of a still valid tabby-cni-plugin token found in the kubeconfig (install-cni's), else undefined. */
export function adoptableExpiry(token: string | undefined, nowMs: number): number | undefined {
  const c = token === undefined ? undefined : jwtClaims(token);
  if (!c || c.exp === undefined || !c.sub?.endsWith(`:${CNI_SERVICE_ACCOUNT}`)) return undefined;
  return c.exp * 1000 > nowMs ? c.exp * 1000 : undefined;
}

export interface CniTokenConfig {
  /** CALICO_MANAGE_CNI: tabby-node keeps the CNI kubeconfig's token fresh. */
  enabled: boolean;
  policy: CniTokenPolicy;
}

/**
 * CALICO_MANAGE_CNI (default false; the DaemonSet sets true), TABBY_CNI_TOKEN_EXPIRATION (seconds or a
 * Go duration, default 24h, at least 10m), TABBY_CNI_TOKEN_CHECK_INTERVAL (default 60s, at least 1s).
 */
export function parseCniTokenConfig(env: NodeJS.ProcessEnv): CniTokenConfig {
  const dur = (key: string, dflt: number): number => {
    const v = env[key];
    return v === undefined || v === '' ? dflt : parseDurationSec(key, v);
  };
  const expirationSec = Math.round(dur('TABBY_CNI_TOKEN_EXPIRATION', DEFAULT_TOKEN_EXPIRATION_SEC));
  if (expirationSec < MIN_TOKEN_EXPIRATION_SEC || expirationSec > 2 ** 32) {
    throw new NodeConfigError(
      'TABBY_CNI_TOKEN_EXPIRATION',
      `token expiration ${expirationSec}s is out of range`,
      'kube-apiserver issues tokens of 10m (600) up to 2^32 seconds; the default is 24h',
    );
  }
  const checkSec = dur('TABBY_CNI_TOKEN_CHECK_INTERVAL', DEFAULT_CHECK_INTERVAL_SEC);
  if (checkSec < 1) {
    throw new NodeConfigError('TABBY_CNI_TOKEN_CHECK_INTERVAL', `check interval ${checkSec}s is too short`, 'use at least 1s (default 60s)');
  }
  return {
    enabled: parseBool(env, 'CALICO_MANAGE_CNI', false),
    policy: { ...DEFAULT_POLICY, expirationSec, checkIntervalMs: checkSec * 1000 },
  };
}

export interface CniTokenDeps {
  /** TokenRequest for tabby-cni-plugin; throws CniTokenError (with the HTTP status when there is one). */
  request: () => Promise<IssuedToken>;
  /** tabby-node's own mounted token (re-read each call), or undefined. */
  mountedToken: () => string | undefined;
  /** Write the CNI kubeconfig with this token atomically (mode 0600). */
  write: (token: string) => void;
  /**
   * The token already in the CNI kubeconfig (install-cni's). A still valid tabby-cni-plugin token is
   * kept through transient TokenRequest errors instead of being replaced by the mounted token.
   */
  fileToken?: () => string | undefined;
  log: Logger;
  policy?: Partial<CniTokenPolicy>;
  now?: () => number;
  /** Wait ms (resolve early when the signal aborts); default a timer that does not hold the process. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export type CniTokenSource = 'none' | 'token-request' | 'mounted';

export interface CniTokenStatus {
  /** Where the token in the kubeconfig came from ('none' before the first write). */
  source: CniTokenSource;
  /** Expiry of the TokenRequest token in use (ms since the epoch). */
  expiresAtMs: number | undefined;
  /** Next TokenRequest (ms since the epoch). */
  nextRequestAtMs: number;
  /** Consecutive failed attempts (errors or refusals). */
  failures: number;
  refreshes: number;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done);
  });
}

/** Replace every known secret in text (error messages may echo a request). */
function scrub(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 8) out = out.split(s).join('[redacted]');
  return out;
}

export class CniTokenRefresher {
  private readonly policy: CniTokenPolicy;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private source: CniTokenSource = 'none';
  /** The token in the kubeconfig file (compared, never logged). */
  private written: string | undefined;
  private expiresAtMs: number | undefined;
  private nextRequestAtMs = -Infinity;
  private failures = 0;
  private refreshes = 0;
  private missingMountedLogged = false;
  private adopted = false;
  /** A refusal was logged at warn since the last success (later ones go to debug). */
  private refusedLogged = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly deps: CniTokenDeps) {
    this.policy = { ...DEFAULT_POLICY, ...deps.policy };
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? defaultSleep;
  }

  status(): CniTokenStatus {
    return { source: this.source, expiresAtMs: this.expiresAtMs, nextRequestAtMs: this.nextRequestAtMs, failures: this.failures, refreshes: this.refreshes };
  }

  /** One step: request a token when due, else keep the fallback current. Returns ms until the next step. */
  async tick(): Promise<number> {
    const now = this.now();
    if (!this.adopted) this.adopt(now);
    if (now >= this.nextRequestAtMs) await this.attempt(now);
    if (this.source === 'token-request' && this.expiresAtMs !== undefined && this.now() >= this.expiresAtMs) {
      // Expired between two attempts (retries are backing off): the mounted token takes over now.
      this.deps.log.warn('the CNI token expired before a new one could be had; using the mounted token');
      this.source = 'none';
      this.expiresAtMs = undefined;
    }
    if (this.source !== 'token-request') this.useMountedToken();
    const until = Math.min(this.nextRequestAtMs, this.expiresAtMs ?? Infinity) - this.now();
    return Math.max(0, Math.min(this.policy.checkIntervalMs, until));
  }

  /** Run tick() in a loop until stop(). */
  start(): void {
    if (this.loop) return;
    const signal = this.abort.signal;
    this.loop = (async () => {
      while (!signal.aborted) {
        let delay: number;
        try {
          delay = await this.tick();
        } catch (err) {
          // tick() handles its own errors; this is a bug, still keep the loop alive.
          this.deps.log.error({ err: this.scrub(errorMessage(err)) }, 'CNI token refresher: unexpected error');
          delay = this.policy.checkIntervalMs;
        }
        if (signal.aborted) break;
        await this.sleep(delay, signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** Take over a valid tabby-cni-plugin token install-cni wrote (it is still refreshed at once). */
  private adopt(now: number): void {
    this.adopted = true;
    let token: string | undefined;
    try {
      token = this.deps.fileToken?.();
    } catch (err) {
      this.deps.log.debug({ err: errorMessage(err) }, 'cannot read the CNI kubeconfig written by install-cni');
      return;
    }
    const exp = adoptableExpiry(token, now);
    if (token === undefined || exp === undefined) return;
    this.written = token;
    this.source = 'token-request';
    this.expiresAtMs = exp;
  }

  private scrub(text: string): string {
    return scrub(text, [this.written]);
  }

  private async attempt(now: number): Promise<void> {
    const { log } = this.deps;
    let issued: IssuedToken;
    try {
      issued = await this.deps.request();
    } catch (err) {
      this.failures++;
      const delay = retryDelayMs(this.failures, this.policy);
      this.nextRequestAtMs = now + delay;
      const status = err instanceof CniTokenError ? err.status : undefined;
      const valid = this.source === 'token-request' && this.expiresAtMs !== undefined && now < this.expiresAtMs;
      const fields = {
        status,
        err: this.scrub(errorMessage(err)),
        retryInSec: Math.round(delay / 1000),
        attempt: this.failures,
        ...(valid ? { currentExpiresAt: new Date(this.expiresAtMs as number).toISOString() } : {}),
      };
      const then = valid ? 'the current token stays in use until it expires, then' : 'meanwhile';
      if (isRefusal(status)) {
        if (!this.refusedLogged) {
          log.warn(
            fields,
            `TokenRequest for ServiceAccount ${CNI_SERVICE_ACCOUNT} refused (HTTP ${status}): ${then} the CNI kubeconfig gets tabby-node's own mounted token; ` +
              `grant tabby-node "create serviceaccounts/token" for resourceName ${CNI_SERVICE_ACCOUNT} (deploy/tabby.yaml) and create the ServiceAccount`,
          );
        } else log.debug(fields, 'TokenRequest still refused');
        this.refusedLogged = true;
      } else {
        log.warn(fields, `CNI token refresh failed, retrying; ${then} the CNI kubeconfig gets the mounted token`);
      }
      if (!valid) {
        // Nothing valid from TokenRequest left: tick() puts the mounted token in.
        this.expiresAtMs = undefined;
        if (this.source === 'token-request') this.source = 'none';
      }
      return;
    }
    try {
      this.deps.write(issued.token);
    } catch (err) {
      this.failures++;
      const delay = retryDelayMs(this.failures, this.policy);
      this.nextRequestAtMs = now + delay;
      log.warn({ err: scrub(errorMessage(err), [this.written, issued.token]), retryInSec: Math.round(delay / 1000) }, 'cannot write the CNI kubeconfig; the old file is unchanged, retrying');
      return;
    }
    const recovered = this.source === 'mounted';
    this.written = issued.token;
    this.source = 'token-request';
    this.expiresAtMs = issued.expiresAtMs;
    this.failures = 0;
    this.refusedLogged = false;
    this.refreshes++;
    // Never sooner than the first retry delay, even for a token that expires at once (clock skew).
    this.nextRequestAtMs = Math.max(now + this.policy.minRetryMs, refreshDueAt(now, issued.expiresAtMs));
    log.info(
      { serviceAccount: CNI_SERVICE_ACCOUNT, expiresAt: new Date(issued.expiresAtMs).toISOString(), nextRefreshAt: new Date(this.nextRequestAtMs).toISOString() },
      recovered ? 'TokenRequest works again: CNI kubeconfig uses a tabby-cni-plugin token' : 'CNI kubeconfig token refreshed',
    );
  }

  /** Falling back: put the mounted token into the kubeconfig when it changed. */
  private useMountedToken(): void {
    const { log } = this.deps;
    let token: string | undefined;
    try {
      token = this.deps.mountedToken()?.trim() || undefined;
    } catch (err) {
      log.warn({ err: this.scrub(errorMessage(err)) }, 'cannot read the mounted service-account token');
      return;
    }
    if (!token) {
      if (!this.missingMountedLogged) log.warn('no mounted service-account token to fall back on; the CNI kubeconfig is left as it is');
      this.missingMountedLogged = true;
      return;
    }
    this.missingMountedLogged = false;
    if (token === this.written && this.source === 'mounted') return;
    try {
      this.deps.write(token);
    } catch (err) {
      log.warn({ err: scrub(errorMessage(err), [this.written, token]) }, 'cannot write the CNI kubeconfig; the old file is unchanged, retrying');
      return;
    }
    const first = this.source !== 'mounted' || this.written === undefined;
    this.written = token;
    this.source = 'mounted';
    log.info(first ? 'CNI kubeconfig now uses the mounted service-account token' : 'mounted service-account token rotated; CNI kubeconfig rewritten');
  }
}
