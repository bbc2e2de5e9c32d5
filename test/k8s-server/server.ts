/**
 * A small, API-faithful Kubernetes API server for tests: serves the crd.projectcalico.org/v1 custom
 * resources of every kind in api/kinds.ts over plain HTTP on 127.0.0.1 (random port).
 *
 * Behaves like kube-apiserver where tabby depends on it:
 * - GET/LIST/POST/PUT/DELETE on /apis/crd.projectcalico.org/v1/[namespaces/<ns>/]<plural>[/<name>];
 * - one global resourceVersion counter (like etcd's revision), uid + creationTimestamp on create;
 * - 409 Conflict on a stale resourceVersion (PUT, DELETE preconditions), 409 AlreadyExists, 404
 *   NotFound, 422 Invalid (PUT without resourceVersion, name mismatch), 400 BadRequest, 401 without
 *   the bearer token — all as `Status` objects shaped as Kubernetes';
 * - labelSelector on list and watch (objects entering/leaving the selection → ADDED/DELETED);
 * - watch (?watch=1&resourceVersion=N): newline-delimited JSON events over a chunked response;
 *   rv unset/"0" starts with synthetic ADDED events; BOOKMARK events when allowWatchBookmarks;
 *   rv older than the retained history → an ERROR event carrying a 410 Expired Status, as the real
 *   server does (the window is tunable and compact() empties it).
 * - core/v1 Secrets, Services and Endpoints, read-only over HTTP (GET
 *   /api/v1/[namespaces/<ns>/]<secrets|services|endpoints>[/<name>], 404 NotFound Status for a
 *   missing one), written with the setSecret()/setCoreObject()/deleteCoreObject() hooks.
 * - TokenRequest (POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token, RBAC: create
 *   serviceaccounts/token): 201 with status.token (a JWT-shaped token) and status.expirationTimestamp;
 *   spec.expirationSeconds defaults to 3600, below 600 or above 2^32 → 422 Invalid, capped by
 *   maxTokenExpirationSeconds (as --service-account-max-token-expiration); empty audiences → the
 *   server's; 404 NotFound for an unknown ServiceAccount. Issued tokens authenticate until they expire.
 * Test hooks: compact(), breakWatches()/restoreWatches() (drop watch connections and refuse new
 * ones), setTimeoutForWatches(), forbidTokenRequests() (403 Forbidden, as missing RBAC), failTokenRequests(),
 * setSecret()/deleteSecret()/setCoreObject()/deleteCoreObject().
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KINDS, type KindInfo } from '../../api/kinds.js';
import { parseLabelSelector, type LabelSelector } from '../../datastore/labels.js';

export const GROUP = 'crd.projectcalico.org';
export const VERSION = 'v1';
const API_VERSION = `${GROUP}/${VERSION}`;

interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion: string;
    uid: string;
    creationTimestamp: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

interface Change {
  rv: number;
  plural: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  prev: StoredObject | undefined;
  cur: StoredObject;
}

interface WatchConn {
  plural: string;
  namespace: string | undefined;
  selector: LabelSelector | undefined;
  res: http.ServerResponse;
  send(ev: { type: string; object: unknown }): void;
  close(): void;
}

export interface K8sTestServerOptions {
  /** How many past changes are kept for watch resumption (default 1000). */
  retainEvents?: number;
  /** Bookmark interval for watches with allowWatchBookmarks (default 1000 ms). */
  bookmarkIntervalMs?: number;
  /** Bearer token clients must send (default "tabby-test-token"); null = no authentication. */
  token?: string | null;
  /**
   * How an expired watch resourceVersion is reported: "event" (default; 200 + ERROR event with a 410
   * Status, as kube-apiserver does) or "status" (an HTTP 410 response, as some proxies/older servers do).
   */
  expiredAs?: 'event' | 'status';
  /** Host to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default random). */
  port?: number;
  /** ServiceAccounts ("namespace/name") TokenRequest knows (default kube-system/tabby-node and kube-system/tabby-cni-plugin). */
  serviceAccounts?: string[];
  /** Longest token lifetime issued, as kube-apiserver's --service-account-max-token-expiration (default none). */
  maxTokenExpirationSeconds?: number;
}

type CoreResource = 'secrets' | 'services' | 'endpoints';
const CORE_KINDS: Record<CoreResource, string> = { secrets: 'Secret', services: 'Service', endpoints: 'Endpoints' };
/** Audience of tokens requested without audiences (kube-apiserver's default --api-audiences). */
export const DEFAULT_TOKEN_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';

export interface K8sTestServer {
  url: string;
  port: number;
  token: string | null;
  /** Every request as RBAC names it (verb, group, resource, and the object name for subresources), for checking declared API calls. */
  readonly requests: Array<{ verb: string; group: string; resource: string; name?: string }>;
  /** Tokens issued by TokenRequest, oldest first. */
  readonly issuedTokens: Array<{ serviceAccount: string; token: string; expirationTimestamp: string; audiences: string[] }>;
  /** Answer TokenRequests with 403 Forbidden (as without RBAC for serviceaccounts/token) until called with false. */
  forbidTokenRequests(on?: boolean): void;
  /** Answer TokenRequests with this HTTP error (e.g. 500, 503) until called with undefined. */
  failTokenRequests(code: number | undefined): void;
  /** Current global resourceVersion. */
  resourceVersion(): string;
  /** Forget all retained watch history: resuming from any older rv gets 410 Gone. */
  compact(): void;
  /** Close every open watch and refuse new watch requests (socket destroyed) until restoreWatches(). */
  breakWatches(): void;
  restoreWatches(): void;
  /** Close watches after this many ms (as the real server's timeout does); undefined = never. */
  setWatchTimeout(ms: number | undefined): void;
  /** Create or replace Secret `namespace/name` with these (plain text) values; stored base64 as the API does. */
  setSecret(namespace: string, name: string, data: Record<string, string>): void;
  /** Remove Secret `namespace/name` (no-op when absent). */
  deleteSecret(namespace: string, name: string): void;
  /** Create or replace a core/v1 Service or Endpoints object as given (metadata.namespace and name required). */
  setCoreObject(resource: 'services' | 'endpoints', obj: { metadata: { name: string; namespace: string } } & Record<string, unknown>): void;
  deleteCoreObject(resource: CoreResource, namespace: string, name: string): void;
  /** Remove all objects (without watch events; for a fresh store between tests). */
  reset(): void;
  close(): Promise<void>;
}

function status(code: number, reason: string, message: string, details?: Record<string, unknown>): object {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

function sortKey(o: StoredObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

export async function startK8sTestServer(opts: K8sTestServerOptions = {}): Promise<K8sTestServer> {
  const retain = opts.retainEvents ?? 1000;
  const bookmarkMs = opts.bookmarkIntervalMs ?? 1000;
  const token = opts.token === undefined ? 'tabby-test-token' : opts.token;
  const byPlural = new Map<string, KindInfo>(KINDS.map((k) => [k.plural, k]));
  const store = new Map<string, Map<string, StoredObject>>(); // plural → "ns/name" → object
  let rv = 1;
  let history: Change[] = [];
  /** Oldest rv a watch may resume from (events after it are all retained). */
  let oldestResumable = 1;
  const watches = new Set<WatchConn>();
  let watchesBroken = false;
  let watchTimeoutMs: number | undefined;
  const requests: K8sTestServer['requests'] = [];
  // core/v1 objects: resource → "ns/name" → object
  const core = new Map<CoreResource, Map<string, StoredObject>>(Object.keys(CORE_KINDS).map((r) => [r as CoreResource, new Map()]));
  const putCore = (resource: CoreResource, obj: Record<string, unknown> & { metadata: { name: string; namespace: string } }): void => {
    const k = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const t = core.get(resource)!;
    const prev = t.get(k);
    rv++;
    t.set(k, {
      ...obj,
      apiVersion: 'v1',
      kind: CORE_KINDS[resource],
      metadata: {
        ...obj.metadata,
        resourceVersion: String(rv),
        uid: prev?.metadata.uid ?? randomUUID(),
        creationTimestamp: prev?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    });
  };
  const serviceAccounts = new Set(opts.serviceAccounts ?? ['kube-system/tabby-node', 'kube-system/tabby-cni-plugin']);
  const issuedTokens: K8sTestServer['issuedTokens'] = [];
  let tokenRequestsForbidden = false;
  let tokenRequestFailure: number | undefined;

  const table = (plural: string): Map<string, StoredObject> => {
    let t = store.get(plural);
    if (!t) store.set(plural, (t = new Map()));
    return t;
  };

  const eventFor = (w: WatchConn, c: Change): { type: string; object: StoredObject } | undefined => {
    if (c.plural !== w.plural) return undefined;
    if (w.namespace !== undefined && c.cur.metadata.namespace !== w.namespace) return undefined;
    const m = (o: StoredObject | undefined): boolean => o !== undefined && (!w.selector || w.selector.matches(o.metadata.labels));
    const curIn = c.type !== 'DELETED' && m(c.cur);
    const prevIn = c.type === 'ADDED' ? false : c.type === 'DELETED' ? m(c.cur) : m(c.prev);
    if (c.type === 'DELETED') return prevIn ? { type: 'DELETED', object: c.cur } : undefined;
    if (curIn && prevIn) return { type: 'MODIFIED', object: c.cur };
    if (curIn) return { type: 'ADDED', object: c.cur };
    if (prevIn) {
      // Left the selection: DELETED with the previous content at the event's resourceVersion.
      const old = structuredClone(c.prev as StoredObject);
      old.metadata.resourceVersion = String(c.rv);
      return { type: 'DELETED', object: old };
    }
    return undefined;
  };

  const record = (c: Change): void => {
    history.push(c);
    if (history.length > retain) {
      const dropped = history.splice(0, history.length - retain);
      oldestResumable = (dropped[dropped.length - 1] as Change).rv;
    }
    for (const w of watches) {
      const ev = eventFor(w, c);
      if (ev) w.send(ev);
    }
  };

  const send = (res: http.ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };

  const readBody = (req: http.IncomingMessage): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() === '') return resolve(undefined);
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err);
        }
      });
    });

  const authenticated = (header: string | undefined): boolean => {
    if (token === null || header === `Bearer ${token}`) return true;
    const m = /^Bearer (.+)$/.exec(header ?? '');
    const t = m ? issuedTokens.find((i) => i.token === m[1]) : undefined;
    return t !== undefined && Date.parse(t.expirationTimestamp) > Date.now();
  };

  /** POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token (TokenRequest). */
  const tokenRequest = async (req: http.IncomingMessage, res: http.ServerResponse, ns: string, sa: string): Promise<void> => {
    requests.push({ verb: 'create', group: '', resource: 'serviceaccounts/token', name: sa });
    const forbidden = (): void =>
      send(res, 403, status(403, 'Forbidden', `serviceaccounts "${sa}" is forbidden: User "system:serviceaccount:kube-system:tabby-node" cannot create resource "serviceaccounts/token" in API group "" in the namespace "${ns}"`, { name: sa, kind: 'serviceaccounts' }));
    if (tokenRequestsForbidden) return forbidden();
    if (tokenRequestFailure !== undefined) {
      const reason = tokenRequestFailure === 503 ? 'ServiceUnavailable' : 'InternalError';
      return send(res, tokenRequestFailure, status(tokenRequestFailure, reason, 'an error on the server ("injected") has prevented the request from succeeding'));
    }
    let body: unknown;
    try {
      body = await readBody(req);
    } catch {
      return send(res, 400, status(400, 'BadRequest', 'the body of the request was in an unknown format'));
    }
    const tr = (body ?? {}) as { apiVersion?: string; kind?: string; spec?: { audiences?: unknown; expirationSeconds?: unknown } };
    if (tr.apiVersion !== 'authentication.k8s.io/v1' || tr.kind !== 'TokenRequest') {
      return send(res, 400, status(400, 'BadRequest', `the API version in the data (${tr.apiVersion}) and kind (${tr.kind}) do not match authentication.k8s.io/v1 TokenRequest`));
    }
    if (!serviceAccounts.has(`${ns}/${sa}`)) {
      return send(res, 404, status(404, 'NotFound', `serviceaccounts "${sa}" not found`, { name: sa, kind: 'serviceaccounts' }));
    }
    const invalid = (field: string, value: unknown, why: string): void =>
      send(res, 422, status(422, 'Invalid', `TokenRequest.authentication.k8s.io "${sa}" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${why}`, { name: sa, group: 'authentication.k8s.io', kind: 'TokenRequest' }));
    const requested = tr.spec?.expirationSeconds ?? 3600;
    if (typeof requested !== 'number' || !Number.isInteger(requested)) return invalid('spec.expirationSeconds', requested, 'must be an integer');
    if (requested < 600) return invalid('spec.expirationSeconds', requested, 'may not specify a duration less than 10 minutes');
    if (requested > 2 ** 32) return invalid('spec.expirationSeconds', requested, 'may not specify a duration larger than 2^32 seconds');
    const rawAud = tr.spec?.audiences ?? [];
    if (!Array.isArray(rawAud) || rawAud.some((a) => typeof a !== 'string')) return invalid('spec.audiences', rawAud, 'must be a list of strings');
    const audiences = rawAud.length ? (rawAud as string[]) : [DEFAULT_TOKEN_AUDIENCE];
    const seconds = opts.maxTokenExpirationSeconds !== undefined ? Math.min(requested, opts.maxTokenExpirationSeconds) : requested;
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + seconds;
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = [
      b64({ alg: 'RS256', kid: 'tabby-test' }),
      b64({ aud: audiences, exp, iat, iss: DEFAULT_TOKEN_AUDIENCE, sub: `system:serviceaccount:${ns}:${sa}`, 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa } } }),
      randomBytes(32).toString('base64url'),
    ].join('.');
    const expirationTimestamp = new Date(exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    issuedTokens.push({ serviceAccount: `${ns}/${sa}`, token: jwt, expirationTimestamp, audiences });
    return send(res, 201, {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: sa, namespace: ns, creationTimestamp: null },
      spec: { audiences, expirationSeconds: seconds, boundObjectRef: null },
      status: { token: jwt, expirationTimestamp },
    });
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!authenticated(req.headers.authorization)) {
      return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const parts = url.pathname.split('/').filter(Boolean);
    // api / v1 / namespaces / ns / serviceaccounts / name / token
    if (parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'namespaces' && parts[4] === 'serviceaccounts' && parts[6] === 'token' && parts.length === 7) {
      if (req.method !== 'POST') return send(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
      return tokenRequest(req, res, parts[3] as string, parts[5] as string);
    }
    // core/v1: api / v1 / [namespaces / ns /] secrets|services|endpoints [/ name]
    if (parts[0] === 'api' && parts[1] === 'v1') {
      const rest = parts[2] === 'namespaces' ? parts.slice(4) : parts.slice(2);
      const ns = parts[2] === 'namespaces' ? parts[3] : undefined;
      const resource = rest[0] as CoreResource | undefined;
      const name = rest[1];
      const t = resource === undefined ? undefined : core.get(resource);
      if (!t || rest.length > 2 || (name !== undefined && ns === undefined)) {
        return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
      }
      const verb = req.method !== 'GET' ? (req.method ?? 'get').toLowerCase() : name === undefined ? 'list' : 'get';
      requests.push({ verb, group: '', resource: resource! });
      if (req.method !== 'GET') return send(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
      if (name === undefined) {
        const items = [...t.values()].filter((o) => ns === undefined || o.metadata.namespace === ns).sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
        return send(res, 200, { apiVersion: 'v1', kind: `${CORE_KINDS[resource!]}List`, metadata: { resourceVersion: String(rv) }, items });
      }
      const o = t.get(`${ns}/${name}`);
      return o ? send(res, 200, o) : send(res, 404, status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource }));
    }
    // apis / group / version / [namespaces / ns /] plural [/ name]
    if (parts[0] !== 'apis' || parts[1] !== GROUP || parts[2] !== VERSION) {
      return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    let rest = parts.slice(3);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    const info = plural === undefined ? undefined : byPlural.get(plural);
    if (!info || sub !== undefined || (namespace !== undefined && !info.namespaced)) {
      return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const gr = `${info.plural}.${GROUP}`;
    const t = table(info.plural);
    const key = (ns: string | undefined, n: string): string => `${ns ?? ''}/${n}`;
    const notFound = (n: string): void => send(res, 404, status(404, 'NotFound', `${gr} "${n}" not found`, { name: n, group: GROUP, kind: info.plural }));
    const method = req.method ?? 'GET';
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const verb = name === undefined
      ? { GET: isWatch ? 'watch' : 'list', POST: 'create', DELETE: 'deletecollection' }[method]
      : { GET: 'get', PUT: 'update', DELETE: 'delete', PATCH: 'patch' }[method];
    requests.push({ verb: verb ?? method.toLowerCase(), group: GROUP, resource: info.plural });
    if (info.namespaced && namespace === undefined && name !== undefined) return notFound(name);
    if (info.namespaced && namespace === undefined && method === 'POST') {
      return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }

    let selector: LabelSelector | undefined;
    const selText = url.searchParams.get('labelSelector');
    if (selText) {
      try {
        selector = parseLabelSelector(selText);
      } catch (err) {
        return send(res, 400, status(400, 'BadRequest', `unable to parse requirement: ${(err as Error).message}`));
      }
    }

    if (name === undefined && method === 'GET') {
      const items = [...t.values()]
        .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && (!selector || selector.matches(o.metadata.labels)))
        .sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
      if (!isWatch) {
        return send(res, 200, { apiVersion: API_VERSION, kind: `${info.v1Kind}List`, metadata: { resourceVersion: String(rv), continue: '' }, items });
      }
      if (watchesBroken) {
        req.socket.destroy();
        return;
      }
      const fromRv = url.searchParams.get('resourceVersion');
      if (opts.expiredAs === 'status' && fromRv && fromRv !== '0' && Number(fromRv) < oldestResumable) {
        return send(res, 410, status(410, 'Expired', `too old resource version: ${fromRv} (${oldestResumable})`));
      }
      // watch
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.flushHeaders();
      const conn: WatchConn = {
        plural: info.plural,
        namespace,
        selector,
        res,
        send: (ev) => {
          if (!res.writableEnded) res.write(`${JSON.stringify(ev)}\n`);
        },
        close: () => {
          watches.delete(conn);
          clearInterval(bm);
          clearTimeout(to);
          if (!res.writableEnded) res.end();
        },
      };
      const from = url.searchParams.get('resourceVersion');
      const bookmarks = url.searchParams.get('allowWatchBookmarks') === 'true' || url.searchParams.get('allowWatchBookmarks') === '1';
      const bm = setInterval(() => {
        if (bookmarks) conn.send({ type: 'BOOKMARK', object: { kind: info.v1Kind, apiVersion: API_VERSION, metadata: { resourceVersion: String(rv) } } });
      }, bookmarkMs);
      const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '0');
      const limit = timeoutSeconds > 0 ? timeoutSeconds * 1000 : watchTimeoutMs;
      const to = limit === undefined ? undefined : setTimeout(() => conn.close(), limit);
      req.on('close', () => conn.close());
      if (from === null || from === '' || from === '0') {
        for (const o of items) conn.send({ type: 'ADDED', object: o });
      } else {
        const n = Number(from);
        if (!Number.isInteger(n) || n < 0) {
          conn.send({ type: 'ERROR', object: status(400, 'BadRequest', `invalid resource version: ${from}`) });
          conn.close();
          return;
        }
        if (n < oldestResumable) {
          conn.send({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${n} (${oldestResumable})`) });
          conn.close();
          return;
        }
        for (const c of history) {
          if (c.rv <= n) continue;
          const ev = eventFor(conn, c);
          if (ev) conn.send(ev);
        }
      }
      watches.add(conn);
      return;
    }

    if (name !== undefined && method === 'GET') {
      const o = t.get(key(namespace, name));
      return o ? send(res, 200, o) : notFound(name);
    }

    let body: unknown;
    try {
      body = await readBody(req);
    } catch {
      return send(res, 400, status(400, 'BadRequest', 'the body of the request was in an unknown format'));
    }

    if (method === 'POST' && name === undefined) {
      const o = body as StoredObject | undefined;
      if (!o || typeof o !== 'object' || !o.metadata || typeof o.metadata.name !== 'string' || o.metadata.name === '') {
        return send(res, 422, status(422, 'Invalid', `${gr} is invalid: metadata.name: Required value: name or generateName is required`));
      }
      if (o.apiVersion !== API_VERSION || o.kind !== info.v1Kind) {
        return send(res, 400, status(400, 'BadRequest', `the API version in the data (${o.apiVersion}) and kind (${o.kind}) do not match ${API_VERSION} ${info.v1Kind}`));
      }
      if (o.metadata.resourceVersion) {
        return send(res, 500, status(500, 'InternalError', 'resourceVersion should not be set on objects to be created'));
      }
      const n = o.metadata.name;
      if (o.metadata.namespace !== undefined && o.metadata.namespace !== namespace) {
        return send(res, 400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
      }
      if (t.has(key(namespace, n))) {
        return send(res, 409, status(409, 'AlreadyExists', `${gr} "${n}" already exists`, { name: n, group: GROUP, kind: info.plural }));
      }
      rv++;
      const stored: StoredObject = {
        ...o,
        metadata: {
          ...o.metadata,
          ...(namespace !== undefined ? { namespace } : {}),
          resourceVersion: String(rv),
          uid: randomUUID(),
          creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          generation: 1,
        },
      };
      t.set(key(namespace, n), stored);
      record({ rv, plural: info.plural, type: 'ADDED', prev: undefined, cur: stored });
      return send(res, 201, stored);
    }

    if (method === 'PUT' && name !== undefined) {
      const o = body as StoredObject | undefined;
      if (!o || typeof o !== 'object' || !o.metadata) return send(res, 400, status(400, 'BadRequest', 'the body of the request was in an unknown format'));
      if (o.metadata.name !== name) {
        return send(res, 400, status(400, 'BadRequest', `the name of the object (${o.metadata.name}) does not match the name on the URL (${name})`));
      }
      if (o.apiVersion !== API_VERSION || o.kind !== info.v1Kind) {
        return send(res, 400, status(400, 'BadRequest', `the API version in the data (${o.apiVersion}) and kind (${o.kind}) do not match ${API_VERSION} ${info.v1Kind}`));
      }
      const cur = t.get(key(namespace, name));
      if (!cur) return notFound(name);
      if (!o.metadata.resourceVersion) {
        return send(res, 422, status(422, 'Invalid', `${gr} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`, { name, group: GROUP, kind: info.plural }));
      }
      if (o.metadata.resourceVersion !== cur.metadata.resourceVersion) {
        return send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${gr} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: GROUP, kind: info.plural }));
      }
      rv++;
      const stored: StoredObject = {
        ...o,
        metadata: {
          ...o.metadata,
          ...(namespace !== undefined ? { namespace } : {}),
          resourceVersion: String(rv),
          uid: cur.metadata.uid,
          creationTimestamp: cur.metadata.creationTimestamp,
          generation: (cur.metadata.generation ?? 1) + (JSON.stringify(o.spec) === JSON.stringify(cur.spec) ? 0 : 1),
        },
      };
      t.set(key(namespace, name), stored);
      record({ rv, plural: info.plural, type: 'MODIFIED', prev: cur, cur: stored });
      return send(res, 200, stored);
    }

    if (method === 'DELETE' && name !== undefined) {
      const cur = t.get(key(namespace, name));
      if (!cur) return notFound(name);
      const pre = (body as { preconditions?: { resourceVersion?: string; uid?: string } } | undefined)?.preconditions;
      if (pre?.resourceVersion !== undefined && pre.resourceVersion !== cur.metadata.resourceVersion) {
        return send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${gr} "${name}": Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`, { name, group: GROUP, kind: info.plural }));
      }
      if (pre?.uid !== undefined && pre.uid !== cur.metadata.uid) {
        return send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${gr} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`, { name, group: GROUP, kind: info.plural }));
      }
      t.delete(key(namespace, name));
      rv++;
      const gone = structuredClone(cur);
      gone.metadata.resourceVersion = String(rv);
      record({ rv, plural: info.plural, type: 'DELETED', prev: cur, cur: gone });
      return send(res, 200, cur);
    }

    return send(res, 405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, status(500, 'InternalError', String(err)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    token,
    requests,
    issuedTokens,
    forbidTokenRequests(on = true) {
      tokenRequestsForbidden = on;
    },
    failTokenRequests(code) {
      tokenRequestFailure = code;
    },
    resourceVersion: () => String(rv),
    compact() {
      history = [];
      oldestResumable = rv;
    },
    breakWatches() {
      watchesBroken = true;
      for (const w of [...watches]) {
        w.res.socket?.destroy();
        w.close();
      }
    },
    restoreWatches() {
      watchesBroken = false;
    },
    setWatchTimeout(ms) {
      watchTimeoutMs = ms;
    },
    setSecret(namespace, name, data) {
      putCore('secrets', {
        metadata: { name, namespace },
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
      });
    },
    deleteSecret(namespace, name) {
      core.get('secrets')!.delete(`${namespace}/${name}`);
    },
    setCoreObject(resource, obj) {
      putCore(resource, obj);
    },
    deleteCoreObject(resource, namespace, name) {
      core.get(resource)!.delete(`${namespace}/${name}`);
    },
    reset() {
      store.clear();
      for (const t of core.values()) t.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const w of [...watches]) w.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Write a kubeconfig for the test server (token auth, plain http) and return its path. */
export async function writeKubeconfig(path: string, srv: Pick<K8sTestServer, 'url' | 'token'>): Promise<string> {
  const user = srv.token === null ? '{}' : `{"token": ${JSON.stringify(srv.token)}}`;
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: tabby-test`,
    // plain http: client-node insists on skip-TLS-verify for http:// servers
    `  cluster: {"server": ${JSON.stringify(srv.url)}, "insecure-skip-tls-verify": true}`,
    'users:',
    `- name: tabby-test`,
    `  user: ${user}`,
    'contexts:',
    '- name: tabby-test',
    '  context: {"cluster": "tabby-test", "user": "tabby-test"}',
    'current-context: tabby-test',
    '',
  ].join('\n');
  await writeFile(path, text, { mode: 0o600 });
  return path;
}
