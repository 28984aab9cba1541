/**
 * IEEE 754 half-precision bit conversions for fp16 ONNX models. In Deno `Float16Array` exists, and
 * onnxruntime-common then hands the native binding a `Float16Array` it rejects (REFERENCE §6); so
 * float16 tensors carry `Uint16Array` bit patterns, and {@link hideFloat16ArrayFromOnnxRuntime}
 * makes onnxruntime-common pick `Uint16Array` before it creates its first tensor.
 *
 * @module
 */
import { Tensor } from "npm:onnxruntime-node@1.30.0";

// one shared float32 ↔ uint32 view: much faster than a DataView in the per-value loop
const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/**
 * Rounds a number to the nearest half-precision value (ties to even) and returns its 16 bits.
 *
 * @example
 * ```ts
 * import { float32ToFloat16Bits } from "./float16.ts";
 * console.assert(float32ToFloat16Bits(1) === 0x3c00);
 * console.assert(float32ToFloat16Bits(-2) === 0xc000);
 * ```
 */
export function float32ToFloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf / NaN
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign; // underflow → ±0
    // subnormal: shift the implicit-one mantissa, round to nearest even
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const half = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    const roundUp = remainder > midpoint || (remainder === midpoint && (half & 1) === 1);
    return sign | (half + (roundUp ? 1 : 0));
  }
  const half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  const roundUp = remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1);
  // a carry out of the mantissa correctly bumps the exponent (up to Inf)
  return sign | (half + (roundUp ? 1 : 0));
}

/**
 * Decodes 16 half-precision bits into a number.
 *
 * @example
 * ```ts
 * import { float16BitsToFloat32 } from "./float16.ts";
 * console.assert(float16BitsToFloat32(0x3c00) === 1);
 * console.assert(float16BitsToFloat32(0x7c00) === Infinity);
 * ```
 */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Encodes an array of numbers as half-precision bit patterns.
 *
 * @example
 * ```ts
 * import { toFloat16Bits } from "./float16.ts";
 * console.assert(toFloat16Bits(new Float32Array([0.5]))[0] === 0x3800);
 * ```
 */
export function toFloat16Bits(values: ArrayLike<number>): Uint16Array {
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = float32ToFloat16Bits(values[i]);
  return bits;
}

/**
 * Decodes half-precision bit patterns (or an already decoded array) into a Float32Array.
 *
 * @example
 * ```ts
 * import { fromFloat16Bits } from "./float16.ts";
 * console.assert(fromFloat16Bits(new Uint16Array([0xbc00]))[0] === -1);
 * ```
 */
export function fromFloat16Bits(bits: ArrayLike<number>): Float32Array {
  const values = new Float32Array(bits.length);
  if (bits instanceof Uint16Array) {
    const table = decodeTable();
    for (let i = 0; i < bits.length; i++) values[i] = table[bits[i]];
  } else {
    // a runtime that decoded the tensor itself (Float16Array) already holds the numbers
    for (let i = 0; i < bits.length; i++) values[i] = bits[i];
  }
  return values;
}

let table: Float32Array | undefined;

/** All 65536 half values decoded once (256 KiB): decoding becomes one array read. */
function decodeTable(): Float32Array {
  if (!table) {
    table = new Float32Array(0x10000);
    for (let bits = 0; bits < 0x10000; bits++) table[bits] = float16BitsToFloat32(bits);
  }
  return table;
}

let hidden = false;

/**
 * Makes onnxruntime-common store float16 tensors as `Uint16Array` (what the native binding takes)
 * even though Deno has `Float16Array`: hides the global while onnxruntime-common runs its one-time
 * typed-array check, then restores it. Idempotent; call before creating any tensor.
 *
 * @example
 * ```ts
 * import { hideFloat16ArrayFromOnnxRuntime } from "./float16.ts";
 * hideFloat16ArrayFromOnnxRuntime();
 * ```
 */
export function hideFloat16ArrayFromOnnxRuntime(): void {
  if (hidden) return;
  hidden = true;
  const global = globalThis as Record<string, unknown>;
  const descriptor = Object.getOwnPropertyDescriptor(global, "Float16Array");
  if (!descriptor) return;
  delete global.Float16Array;
  try {
    // the first Tensor runs onnxruntime-common's check, which now maps float16 → Uint16Array
    new Tensor("float32", new Float32Array(1), [1]);
  } finally {
    Object.defineProperty(global, "Float16Array", descriptor);
  }
}
