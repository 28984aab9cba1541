/**
 * The package version, recorded in every result's provenance (kept equal to deno.json's by a test).
 *
 * @module
 */

/**
 * infodiff's version.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.assert(/^\d+\.\d+\.\d+/.test(VERSION));
 * ```
 */
export const VERSION: string = "0.1.0";
