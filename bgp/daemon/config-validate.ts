/**
 * The validator of the configuration file: ajv, compiled from CONFIG_SCHEMA on first use.
 *
 * In the tabby-bgp bundle this module is replaced (scripts/build.mjs, plugin `bgp-config-validator`)
 * by ajv's standalone code for the same schema and options, generated at build time: the daemon
 * then neither loads ajv nor compiles the schema at start (≈ 10 MB and ≈ 0.1 s CPU,
 * bench/results/bgpfib.md). Keep the options here and in the plugin the same.
 */
import type { ValidateFunction } from 'ajv';
import { CONFIG_SCHEMA } from './config-schema.js';

/** The ajv options of the config validator (the build plugin uses the same). */
export const CONFIG_AJV_OPTIONS = { allErrors: true, strict: false } as const;

let compiled: Promise<ValidateFunction> | undefined;

export function configValidator(): Promise<ValidateFunction> {
  compiled ??= (async () => {
    const { Ajv } = await import('ajv');
    const { default: addFormats } = await import('ajv-formats');
    const ajv = new Ajv(CONFIG_AJV_OPTIONS);
    (addFormats as unknown as (a: InstanceType<typeof Ajv>) => void)(ajv);
    return ajv.compile(CONFIG_SCHEMA);
  })();
  return compiled;
}
