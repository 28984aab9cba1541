/**
 * Per-row seeds for studies. Every row (item) of a study gets its own noise draws, derived from the
 * study's base seed and a hash of what the row is (its model data and its text): rows are then
 * independent samples — a heavy (α, ε) draw shared by every row would move all of them the same
 * way, and the standard error over rows would understate the uncertainty — and a row gets the same
 * draws however it is stored (COCO, COCO-IT, in memory), ordered, sharded or resumed. Within a row
 * all conditions still share the same draws (common random numbers).
 *
 * @module
 */

/**
 * A 32-bit seed from a base seed, the row's data and its text (FNV-1a over all their bytes).
 *
 * @example
 * ```ts
 * import { rowSeed } from "./row-seed.ts";
 * const data = new Float32Array([0.5, -1]);
 * console.assert(rowSeed(0, data, "a red circle|red") === rowSeed(0, data.slice(), "a red circle|red"));
 * console.assert(rowSeed(0, data, "a red circle|red") !== rowSeed(1, data, "a red circle|red"));
 * ```
 */
export function rowSeed(base: number, data: Float32Array, text: string): number {
  let h = 0x811c9dc5;
  const mix = (byte: number) => {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  const baseBytes = new Uint8Array(new Float64Array([base]).buffer);
  baseBytes.forEach(mix);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).forEach(mix);
  new TextEncoder().encode(text).forEach(mix);
  return h;
}
