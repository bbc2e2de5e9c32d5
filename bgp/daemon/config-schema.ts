/**
 * JSON schema of the tabby-bgp configuration file. Plain data without imports: scripts/build.mjs
 * evaluates it at build time to compile the bundle's standalone validator (config-validate.ts).
 */
const community = { type: 'string', pattern: '^[0-9]+:[0-9]+(:[0-9]+)?$' };
const cidr = { type: 'string', pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$' };
const ip = { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] };
const asn = { type: 'integer', minimum: 1, maximum: 4294967295 };
/** BGPFilter rule lists are checked by the Calico resource validation (api/), see parseConfig. */
const rules = { type: 'array', items: { type: 'object' } };

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['routerId', 'asNumber'],
  properties: {
    routerId: { type: 'string', format: 'ipv4' },
    asNumber: asn,
    clusterId: { type: 'string', format: 'ipv4' },
    listen: {
      type: 'object',
      additionalProperties: false,
      required: ['port'],
      properties: { address: ip, port: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    peers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address', 'asNumber'],
        properties: {
          address: ip,
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          asNumber: asn,
          localAsNumber: asn,
          password: { type: 'string', minLength: 1, maxLength: 80 },
          passive: { type: 'boolean' },
          ttlSecurity: { type: 'integer', minimum: 1, maximum: 254 },
          multihop: { type: 'integer', minimum: 1, maximum: 255 },
          sourceAddress: ip,
          routeReflectorClient: { type: 'boolean' },
          addPaths: { enum: ['none', 'receive', 'send', 'both'] },
          gracefulRestart: {
            anyOf: [
              { const: false },
              { type: 'object', additionalProperties: false, required: ['restartTime'], properties: { restartTime: { type: 'integer', minimum: 0, maximum: 4095 } } },
            ],
          },
          holdTime: { anyOf: [{ const: 0 }, { type: 'integer', minimum: 3, maximum: 65535 }] },
          keepaliveTime: { type: 'integer', minimum: 1 },
          connectRetryTime: { type: 'integer', minimum: 1 },
          nextHopMode: { enum: ['auto', 'self', 'keep'] },
          nextHopSelf: { type: 'object', additionalProperties: false, properties: { ipv4: { type: 'string', format: 'ipv4' }, ipv6: { type: 'string', format: 'ipv6' } } },
          allowLocalAs: { type: 'integer', minimum: 0, maximum: 10 },
          maxPrefixes: { type: 'integer', minimum: 1 },
          maxPrefixRestartTime: { type: 'integer', minimum: 0, maximum: 86400 },
          families: { type: 'array', items: { enum: ['ipv4-unicast', 'ipv6-unicast'] }, minItems: 1 },
          filters: { type: 'array', items: { type: 'string' } },
          description: { type: 'string' },
        },
      },
    },
    originate: {
      type: 'array',
      items: {
        anyOf: [
          cidr,
          {
            type: 'object',
            additionalProperties: false,
            required: ['prefix'],
            properties: { prefix: cidr, communities: { type: 'array', items: community }, interface: { type: 'string' } },
          },
        ],
      },
    },
    filters: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1 },
          exportV4: rules,
          importV4: rules,
          exportV6: rules,
          importV6: rules,
        },
      },
    },
    prefixAdvertisements: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['cidr', 'communities'], properties: { cidr, communities: { type: 'array', items: community } } },
    },
    maxPaths: { type: 'integer', minimum: 1, maximum: 64 },
    routePriority: { type: 'integer', minimum: 1, maximum: 2147483646 },
    maxPendingRoutes: { type: 'integer', minimum: 1 },
    gracefulRestart: {
      type: 'object',
      additionalProperties: false,
      properties: { restarting: { type: 'boolean' }, deferralTime: { type: 'integer', minimum: 0, maximum: 3600 } },
    },
    fib: {
      type: 'object',
      additionalProperties: false,
      properties: {
        install: { type: 'boolean' },
        protocol: { type: 'integer', minimum: 1, maximum: 255 },
        table: { type: 'integer', minimum: 1 },
        metric: { type: 'integer', minimum: 0 },
      },
    },
    statusSocket: { type: 'string', minLength: 1 },
  },
} as const;
