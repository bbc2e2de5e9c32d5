/**
 * Validates every Kubernetes manifest we ship: YAML parses, kinds/apiVersions are known, CRD schemas
 * are structural OpenAPI v3 that ajv compiles, RBAC covers every API call the Kubernetes datastore
 * makes and stays within Calico's roles, the DaemonSet is wired as calico-node is, and tabby.yaml is
 * what scripts/gen-manifests.ts produces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { KINDS } from '../../api/kinds.js';
import { KUBERNETES_API_CALLS, NODE_AGENT_API_CALLS } from '../../datastore/kubernetes-api.js';
import { CNI_SERVICE_ACCOUNT, parseCniTokenConfig } from '../../node/cni-token.js';
import { cniNetDirFromEnv, DEFAULT_NETWORK_CONFIG, hostRootFromEnv, KUBECONFIG_NAME, renderConflist, resolveInstallCniOptions } from '../../node/install-cni.js';
import { silentLogger } from '../../lib/log.js';
import { DEFAULT_IMAGE, MANIFEST_PATH, renderManifests, ROOT } from '../../scripts/gen-manifests.js';

type Obj = Record<string, unknown>;
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function loadDocs(path: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  const out: Obj[] = [];
  for (const d of docs) {
    assert.deepEqual(d.errors.map(String), [], `${path}: YAML errors`);
    assert.deepEqual(d.warnings.map(String), [], `${path}: YAML warnings`);
    const js = d.toJS() as Obj | null;
    if (js !== null) out.push(js);
  }
  return out;
}

const yamlIn = (dir: string): string[] =>
  readdirSync(join(ROOT, dir))
    .filter((n) => n.endsWith('.yaml'))
    .map((n) => join(ROOT, dir, n));

const MANIFEST_FILES = [MANIFEST_PATH, ...yamlIn('deploy/templates'), ...yamlIn('crds'), join(ROOT, 'deploy/compose/cluster.yaml')];

/** apiVersion → kinds we allow in shipped manifests. */
const ALLOWED: Record<string, readonly string[]> = {
  v1: ['ServiceAccount', 'ConfigMap'],
  'rbac.authorization.k8s.io/v1': ['ClusterRole', 'ClusterRoleBinding'],
  'apps/v1': ['DaemonSet'],
  'apiextensions.k8s.io/v1': ['CustomResourceDefinition'],
  'projectcalico.org/v3': ['IPPool', 'BGPPeer'],
};

const tabby = loadDocs(MANIFEST_PATH);
const byKind = (kind: string): Any[] => tabby.filter((d) => d.kind === kind);
const named = (kind: string, name: string): Any => {
  const d = byKind(kind).find((x) => x.metadata?.name === name);
  assert.ok(d, `tabby.yaml has no ${kind} ${name}`);
  return d;
};

test('every manifest parses and uses only known apiVersion/kind pairs with a name', () => {
  let n = 0;
  for (const f of MANIFEST_FILES) {
    for (const d of loadDocs(f) as Any[]) {
      n++;
      assert.ok(ALLOWED[d.apiVersion]?.includes(d.kind), `${f}: ${d.apiVersion} ${d.kind} is not in the allowed table`);
      assert.equal(typeof d.metadata?.name, 'string', `${f}: ${d.kind} without metadata.name`);
    }
  }
  assert.ok(n > 20, `only ${n} documents found`);
  // No placeholder left in the assembled file.
  assert.doesNotMatch(readFileSync(MANIFEST_PATH, 'utf8'), /__(TABBY_IMAGE|CRD_PLURALS)__/);
});

test('tabby.yaml is up to date with scripts/gen-manifests.ts', () => {
  assert.equal(readFileSync(MANIFEST_PATH, 'utf8'), renderManifests(), 'deploy/tabby.yaml is stale: run node --import tsx scripts/gen-manifests.ts');
  const other = renderManifests({ image: 'registry.example/tabby:9.9' });
  assert.doesNotMatch(other, new RegExp(DEFAULT_IMAGE.replace(/[.]/g, '\\.')));
  assert.equal(other.match(/registry\.example\/tabby:9\.9/g)?.length, 2 + 1); // init container, agent, header
  assert.throws(() => renderManifests({ image: 'bad image; rm -rf' }), /bad image/);
});

test('one CRD per stored kind, named and scoped as the kind registry says', () => {
  const crds = byKind('CustomResourceDefinition');
  assert.deepEqual(crds.map((c) => c.spec.names.plural).sort(), KINDS.map((k) => k.plural).sort());
  for (const c of crds) {
    const k = KINDS.find((x) => x.plural === c.spec.names.plural)!;
    assert.equal(c.spec.group, 'crd.projectcalico.org');
    assert.equal(c.metadata.name, `${k.plural}.crd.projectcalico.org`);
    assert.equal(c.spec.names.kind, k.v1Kind);
    assert.equal(c.spec.scope, k.namespaced ? 'Namespaced' : 'Cluster');
    assert.equal(c.spec.versions.filter((v: Any) => v.storage).length, 1, `${c.metadata.name}: exactly one storage version`);
  }
});

/** Structural-schema rules of apiextensions.k8s.io/v1 (the ones a generator can break). */
function structuralProblems(s: Any, path: string, out: string[], root = true): string[] {
  if (s === null || typeof s !== 'object') {
    out.push(`${path}: not a schema object`);
    return out;
  }
  for (const bad of ['$ref', 'definitions', 'dependencies', 'additionalItems', 'patternProperties', '$schema', 'id']) {
    if (bad in s) out.push(`${path}: ${bad} is not allowed in a structural schema`);
  }
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (!s.type && !intOrString && !preserve) out.push(`${path}: no type`);
  if (s.properties && s.additionalProperties !== undefined && s.additionalProperties !== false) {
    out.push(`${path}: properties and additionalProperties together`);
  }
  if (root && s.type !== 'object') out.push(`${path}: the root must be type object`);
  if (s.type === 'array' && !s.items) out.push(`${path}: array without items`);
  for (const [k, v] of Object.entries(s.properties ?? {})) structuralProblems(v, `${path}.properties.${k}`, out, false);
  if (s.items) structuralProblems(s.items, `${path}.items`, out, false);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') structuralProblems(s.additionalProperties, `${path}.additionalProperties`, out, false);
  // Inside anyOf/oneOf/allOf/not only value validations may appear: no types, defaults or descriptions.
  // The one exception Kubernetes makes: int-or-string may say anyOf [{type: integer}, {type: string}].
  const intOrStringAnyOf = intOrString && JSON.stringify(s.anyOf) === JSON.stringify([{ type: 'integer' }, { type: 'string' }]);
  for (const comb of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (comb === 'anyOf' && intOrStringAnyOf) continue;
    for (const [i, sub] of ((s[comb] ?? []) as Any[]).entries()) {
      for (const k of ['type', 'default', 'description', 'nullable', 'additionalProperties']) {
        if (k in sub) out.push(`${path}.${comb}[${i}]: ${k} is not allowed under ${comb}`);
      }
    }
  }
  if (s.metadata && root === false && path.endsWith('.properties.metadata')) {
    // metadata may only restrict name/generateName (checked loosely: no other properties).
    const extra = Object.keys(s.properties ?? {}).filter((k) => k !== 'name' && k !== 'generateName');
    if (extra.length) out.push(`${path}: metadata may only constrain name and generateName`);
  }
  return out;
}

/** ajv in strict mode, taught the OpenAPI/Kubernetes keywords and formats the API server accepts. */
function openApiAjv(): Ajv {
  const ajv = new Ajv({ strict: true, strictTypes: false, allErrors: true, validateFormats: true }) // strictTypes is ajv style, not OpenAPI (int-or-string mixes types);
  for (const kw of ['x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations', 'example', 'externalDocs']) {
    ajv.addKeyword(kw);
  }
  // Kubernetes' formats: checked by the API server, accepted as-is here.
  for (const f of ['cidr', 'ip', 'ipv4', 'ipv6', 'date-time', 'date', 'duration', 'int32', 'int64', 'float', 'double', 'byte', 'uri', 'uuid', 'hostname', 'mac', 'password']) {
    ajv.addFormat(f, true);
  }
  return ajv;
}

test('CRD schemas are structural OpenAPI v3 schemas that ajv compiles and that accept a minimal object', () => {
  const ajv = openApiAjv();
  for (const c of byKind('CustomResourceDefinition')) {
    for (const v of c.spec.versions) {
      const schema = v.schema?.openAPIV3Schema;
      assert.ok(schema, `${c.metadata.name}/${v.name}: no openAPIV3Schema`);
      assert.deepEqual(structuralProblems(schema, `${c.metadata.name}.${v.name}`, []), []);
      const validate = ajv.compile(schema);
      const minimal = { apiVersion: `${c.spec.group}/${v.name}`, kind: c.spec.names.kind, metadata: { name: 'x' } };
      assert.equal(validate(minimal), true, `${c.metadata.name}: a minimal object is rejected: ${ajv.errorsText(validate.errors)}`);
    }
  }
  // The checkers themselves catch broken schemas.
  assert.throws(() => ajv.compile({ type: 'object', propertes: {} }), /unknown keyword/);
  assert.notDeepEqual(structuralProblems({ type: 'object', properties: { a: {} } }, 's', []), []);
  assert.notDeepEqual(structuralProblems({ type: 'object', properties: { a: { $ref: '#/x' } } }, 's', []), []);
  assert.notDeepEqual(structuralProblems({ type: 'object', properties: { a: { type: 'string', anyOf: [{ type: 'integer' }] } } }, 's', []), []);
});

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
const rulesOf = (role: string): Rule[] => named('ClusterRole', role).rules as Rule[];

/** As RBAC decides: a rule with resourceNames allows a call for one of those names only. */
function allows(rules: Rule[], verb: string, group: string, resource: string, resourceName?: string): boolean {
  return rules.some(
    (r) =>
      (r.apiGroups.includes(group) || r.apiGroups.includes('*')) &&
      (r.resources.includes(resource) || r.resources.includes('*')) &&
      (r.verbs.includes(verb) || r.verbs.includes('*')) &&
      (r.resourceNames === undefined || (resourceName !== undefined && r.resourceNames.includes(resourceName))),
  );
}

test('the tabby-node role covers the calls the agent makes besides the datastore\'s (TokenRequest for tabby-cni-plugin only)', () => {
  assert.deepEqual(NODE_AGENT_API_CALLS.filter((c) => !allows(rulesOf('tabby-node'), c.verb, c.group, c.resource, c.resourceName)), []);
  assert.deepEqual(NODE_AGENT_API_CALLS.map((c) => c.resourceName), [CNI_SERVICE_ACCOUNT]);
  // Only that name: a token for any other ServiceAccount (or without a name) is not allowed.
  assert.equal(allows(rulesOf('tabby-node'), 'create', '', 'serviceaccounts/token', 'tabby-node'), false);
  assert.equal(allows(rulesOf('tabby-node'), 'create', '', 'serviceaccounts/token'), false);
  assert.equal(allows(rulesOf('tabby-cni-plugin'), 'create', '', 'serviceaccounts/token', CNI_SERVICE_ACCOUNT), false);
});

test('the ClusterRoles cover every call the Kubernetes datastore adapter makes', () => {
  const all = byKind('ClusterRole').flatMap((r) => r.rules as Rule[]);
  const missing = KUBERNETES_API_CALLS.filter((c) => !allows(all, c.verb, c.group, c.resource));
  assert.deepEqual(missing, []);
  assert.ok(KUBERNETES_API_CALLS.length > 0);
  // The tabbyctl role is the one that covers them all, as Calico's calicoctl role does.
  assert.deepEqual(KUBERNETES_API_CALLS.filter((c) => !allows(rulesOf('tabbyctl'), c.verb, c.group, c.resource)), []);
  assert.equal(allows(rulesOf('tabby-cni-plugin'), 'delete', 'crd.projectcalico.org', 'ippools'), true);
  assert.equal(allows(rulesOf('tabby-cni-plugin'), 'watch', 'crd.projectcalico.org', 'ippools'), false);
});

/**
 * Calico's calico-node and calico-cni-plugin ClusterRoles (calico.md §7) as (group, resource) → verbs.
 * tabby keeps Node and WorkloadEndpoint as CRDs where Calico maps them onto core nodes and pods;
 * the extra entries marked "tabby" stand for Calico's nodes/status and pods/status writes.
 */
const CRD = 'crd.projectcalico.org';
const CALICO_NODE: Record<string, string[]> = {
  '/pods': ['get', 'list', 'watch'],
  '/nodes': ['get'],
  '/namespaces': ['get', 'list', 'watch'],
  '/serviceaccounts': ['list', 'watch'],
  '/serviceaccounts/token': ['create'],
  '/endpoints': ['watch', 'list', 'get'],
  '/services': ['watch', 'list', 'get'],
  'discovery.k8s.io/endpointslices': ['watch', 'list', 'get'],
  '/configmaps': ['get'],
  '/nodes/status': ['patch', 'update'],
  '/pods/status': ['patch'],
  'networking.k8s.io/networkpolicies': ['watch', 'list'],
  'apps/daemonsets': ['get'],
  [`${CRD}/felixconfigurations`]: ['get', 'list', 'watch', 'create', 'update'],
  [`${CRD}/bgppeers`]: ['get', 'list', 'watch'],
  [`${CRD}/bgpfilters`]: ['get', 'list', 'watch'],
  [`${CRD}/bgpconfigurations`]: ['get', 'list', 'watch', 'create', 'update'],
  [`${CRD}/ippools`]: ['get', 'list', 'watch', 'create', 'update'],
  [`${CRD}/ipreservations`]: ['get', 'list', 'watch'],
  [`${CRD}/clusterinformations`]: ['get', 'list', 'watch', 'create', 'update'],
  [`${CRD}/caliconodestatuses`]: ['get', 'list', 'watch', 'update'],
  [`${CRD}/blockaffinities`]: ['get', 'list', 'watch', 'create', 'update', 'delete'],
  [`${CRD}/ipamblocks`]: ['get', 'list', 'watch', 'create', 'update', 'delete'],
  [`${CRD}/ipamhandles`]: ['get', 'list', 'create', 'update', 'delete'],
  [`${CRD}/ipamconfigs`]: ['get', 'create'],
  // tabby: Node registration (Calico: nodes get + nodes/status update), pod endpoints (Calico: pods watch).
  [`${CRD}/nodes`]: ['get', 'list', 'watch', 'create', 'update'],
  [`${CRD}/workloadendpoints`]: ['get', 'list', 'watch'],
};
const CALICO_CNI: Record<string, string[]> = {
  '/pods': ['get'],
  '/nodes': ['get'],
  '/namespaces': ['get'],
  '/pods/status': ['patch'],
  ...Object.fromEntries(
    ['blockaffinities', 'ipamblocks', 'ipamhandles', 'clusterinformations', 'ippools', 'ipreservations', 'ipamconfigs'].map((r) => [
      `${CRD}/${r}`,
      ['get', 'list', 'create', 'update', 'delete'],
    ]),
  ),
  // tabby: the plugin writes the WorkloadEndpoint CRD (Calico: pods/status patch) and reads its Node.
  [`${CRD}/workloadendpoints`]: ['get', 'list', 'create', 'update', 'delete'],
  [`${CRD}/nodes`]: ['get'],
};

function widerThan(rules: Rule[], allowed: Record<string, string[]>): string[] {
  const out: string[] = [];
  for (const r of rules) {
    for (const g of r.apiGroups) {
      for (const res of r.resources) {
        for (const v of r.verbs) {
          if (!allowed[`${g}/${res}`]?.includes(v)) out.push(`${v} ${g}/${res}`);
        }
      }
    }
    if (r.resources.includes('serviceaccounts/token')) assert.deepEqual(r.resourceNames, ['tabby-cni-plugin']);
  }
  return out;
}

test('tabby-node and tabby-cni-plugin roles are no wider than Calico\'s calico-node and calico-cni-plugin', () => {
  assert.deepEqual(widerThan(rulesOf('tabby-node'), CALICO_NODE), []);
  assert.deepEqual(widerThan(rulesOf('tabby-cni-plugin'), CALICO_CNI), []);
  // The comparison itself fails on a wider rule.
  assert.deepEqual(widerThan([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }], CALICO_NODE), ['get /secrets']);
});

test('bindings tie each role to its ServiceAccount in kube-system', () => {
  const sas = byKind('ServiceAccount').map((s) => `${s.metadata.namespace}/${s.metadata.name}`);
  assert.deepEqual(sas.sort(), ['kube-system/tabby-cni-plugin', 'kube-system/tabby-node']);
  for (const name of ['tabby-node', 'tabby-cni-plugin']) {
    const b = named('ClusterRoleBinding', name);
    assert.equal(b.roleRef.kind, 'ClusterRole');
    assert.equal(b.roleRef.name, name);
    named('ClusterRole', name);
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name, namespace: 'kube-system' }]);
  }
  for (const b of byKind('ClusterRoleBinding')) named('ClusterRole', b.roleRef.name);
});

test('the ConfigMap carries the conflist install-cni defaults to (tabby + tabby-ipam + portmap)', () => {
  const cm = named('ConfigMap', 'tabby-config');
  assert.equal(cm.metadata.namespace, 'kube-system');
  const vars = { nodeName: 'n', mtu: 1500, kubeconfigPath: '/etc/cni/net.d/tabby-kubeconfig' };
  const fromMap = JSON.parse(renderConflist(cm.data.cni_network_config, vars));
  assert.deepEqual(fromMap, JSON.parse(renderConflist(DEFAULT_NETWORK_CONFIG, vars)));
  assert.deepEqual(fromMap.plugins.map((p: Any) => p.type), ['tabby', 'portmap']);
  assert.equal(fromMap.plugins[0].ipam.type, 'tabby-ipam');
  assert.equal(fromMap.plugins[0].datastore_type, 'kubernetes');
  for (const placeholder of ['__KUBERNETES_NODE_NAME__', '__CNI_MTU__', '__KUBECONFIG_FILEPATH__']) assert.ok(cm.data.cni_network_config.includes(placeholder));
});

const envOf = (c: Any): Record<string, Any> => Object.fromEntries((c.env as Any[]).map((e) => [e.name, e]));

test('the tabby-node DaemonSet is wired like calico-node', () => {
  const ds = named('DaemonSet', 'tabby-node');
  assert.equal(ds.metadata.namespace, 'kube-system');
  const spec = ds.spec.template.spec;
  assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.serviceAccountName, 'tabby-node');
  assert.equal(spec.priorityClassName, 'system-node-critical');
  assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  const tol = spec.tolerations as Any[];
  for (const effect of ['NoSchedule', 'NoExecute']) assert.ok(tol.some((x) => x.effect === effect && x.operator === 'Exists' && !x.key));
  assert.ok(tol.some((x) => x.key === 'CriticalAddonsOnly' && x.operator === 'Exists'));

  const [init] = spec.initContainers as Any[];
  assert.equal(init.name, 'install-cni');
  assert.deepEqual(init.command, ['tabby-node', 'install-cni']);
  assert.equal(init.securityContext.privileged, true);
  const ienv = envOf(init);
  assert.equal(ienv.CNI_CONF_NAME.value, '10-tabby.conflist');
  assert.equal(ienv.KUBERNETES_NODE_NAME.valueFrom.fieldRef.fieldPath, 'spec.nodeName');
  assert.deepEqual(ienv.CNI_NETWORK_CONFIG.valueFrom.configMapKeyRef, { name: 'tabby-config', key: 'cni_network_config' });

  const main = (spec.containers as Any[]).find((c) => c.name === 'tabby-node');
  assert.equal(main.securityContext.privileged, true);
  const env = envOf(main);
  assert.equal(env.DATASTORE_TYPE.value, 'kubernetes');
  assert.equal(env.NODENAME.valueFrom.fieldRef.fieldPath, 'spec.nodeName');
  assert.equal(env.IP.value, 'autodetect');
  assert.equal(env.CALICO_IPV4POOL_IPIP.value, 'Never');
  assert.equal(env.CALICO_IPV4POOL_CIDR, undefined, 'the pool CIDR stays a commented-out default');
  assert.match(readFileSync(join(ROOT, 'deploy/templates/30-daemonset.yaml'), 'utf8'), /#\s+- name: CALICO_IPV4POOL_CIDR/);
  const healthPort = Number(env.FELIX_HEALTHPORT.value);
  assert.equal(healthPort, 9099);
  for (const [probe, path] of [
    ['livenessProbe', '/liveness'],
    ['readinessProbe', '/readiness'],
  ] as const) {
    assert.deepEqual(main[probe].httpGet, { host: '127.0.0.1', path, port: healthPort }, `${probe} must hit the health port`);
  }
  for (const c of [init, main]) assert.equal(c.image, DEFAULT_IMAGE);

  // tabby-node keeps the CNI kubeconfig's token fresh, in the host dir install-cni wrote it to.
  assert.equal(env.CALICO_MANAGE_CNI.value, 'true');
  const plainEnv = Object.fromEntries((main.env as Any[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
  assert.equal(parseCniTokenConfig(plainEnv).enabled, true);
  const mainMount = (main.volumeMounts as Any[]).find((m) => m.mountPath === hostRootFromEnv(plainEnv) + cniNetDirFromEnv(plainEnv));
  assert.equal(mainMount?.name, 'cni-net-dir');
  assert.equal(mainMount?.readOnly, false);

  // Every mount has a volume, every host path the agent needs is there.
  const volumes = new Map((spec.volumes as Any[]).map((v) => [v.name, v.hostPath?.path]));
  for (const c of [init, main]) for (const m of c.volumeMounts as Any[]) assert.ok(volumes.has(m.name), `${c.name}: mount ${m.name} has no volume`);
  assert.deepEqual([...volumes.values()].sort(), ['/etc/cni/net.d', '/lib/modules', '/opt/cni/bin', '/run/xtables.lock', '/var/lib/tabby', '/var/log/tabby', '/var/run/netns', '/var/run/tabby']);
  // The CNI server opens pod namespaces the runtime creates after the agent started.
  const netns = (main.volumeMounts as Any[]).find((m) => m.mountPath === '/var/run/netns');
  assert.equal(netns?.mountPropagation, 'HostToContainer');
  for (const path of ['/opt/cni/bin', '/etc/cni/net.d']) assert.equal((main.volumeMounts as Any[]).find((m) => m.mountPath === path)?.readOnly, true, `${path} read-only in the agent`);
  // Every ConfigMap key referenced exists.
  const cm = named('ConfigMap', 'tabby-config');
  for (const c of [init, main]) {
    for (const e of c.env as Any[]) {
      const ref = e.valueFrom?.configMapKeyRef;
      if (ref) assert.ok(ref.name === 'tabby-config' && ref.key in cm.data, `${c.name}: ${e.name} refers to a missing ConfigMap key`);
    }
  }
});

test('install-cni, fed the init container\'s env, writes into the mounted host dirs and points the conflist at host paths', () => {
  const ds = named('DaemonSet', 'tabby-node');
  const spec = ds.spec.template.spec;
  const init = (spec.initContainers as Any[]).find((c) => c.name === 'install-cni');
  const cm = named('ConfigMap', 'tabby-config');
  const env: Record<string, string> = {};
  for (const e of init.env as Any[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef) env[e.name] = cm.data[e.valueFrom.configMapKeyRef.key];
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'worker-1';
  }
  const o = resolveInstallCniOptions({ env, log: silentLogger(), readFile: () => undefined, nodeBinary: '/usr/local/bin/node', appDir: '/opt/tabby' });
  const hostPathOf = new Map((spec.volumes as Any[]).map((v) => [v.name, v.hostPath?.path]));
  const mounts = new Map((init.volumeMounts as Any[]).map((m) => [m.mountPath, hostPathOf.get(m.name)]));
  // Where install-cni writes inside the container is a mount of the same host directory.
  assert.equal(mounts.get(o.hostRoot + o.cniBinDir), o.cniBinDir);
  assert.equal(mounts.get(o.hostRoot + o.cniNetDir), o.cniNetDir);
  const conf = JSON.parse(renderConflist(o.networkConfig, { nodeName: o.nodeName, mtu: o.mtu, kubeconfigPath: `${o.cniNetDir}/${KUBECONFIG_NAME}` }));
  assert.equal(conf.plugins[0].kubernetes.kubeconfig, '/etc/cni/net.d/tabby-kubeconfig');
  assert.equal(conf.plugins[0].nodename, 'worker-1');
  assert.equal(o.mtu, 0, 'veth_mtu "0": the plugin reads the MTU file tabby-node writes');
  assert.equal(o.confName, '10-tabby.conflist');
});
