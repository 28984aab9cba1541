import assert from "node:assert/strict";
import {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  fromFloat16Bits,
  toFloat16Bits,
} from "../src/models/onnx/float16.ts";

Deno.test("fp16 bit patterns of known values", () => {
  const known: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest half
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1e6, 0x7c00], // overflow
    [2 ** -26, 0x0000], // underflow
    [1 + 2 ** -11, 0x3c00], // tie → even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
    [65520, 0x7c00], // rounds past the largest half
  ];
  for (const [value, bits] of known) {
    assert.equal(float32ToFloat16Bits(value), bits, `${value}`);
  }
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
});

Deno.test("every finite fp16 value round-trips bit-exactly through float32", () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const exponent = (bits >>> 10) & 0x1f;
    if (exponent === 0x1f && (bits & 0x3ff) !== 0) continue; // NaN payloads
    const value = float16BitsToFloat32(bits);
    assert.equal(float32ToFloat16Bits(value), bits, `bits ${bits.toString(16)}`);
  }
});

Deno.test("rounding to fp16 is nearest: error at most half an ulp", () => {
  for (let k = 0; k < 5000; k++) {
    const value = (Math.sin(k * 12.9898) * 43758.5453) % 300;
    const rounded = fromFloat16Bits(toFloat16Bits([value]))[0];
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(value))) - 10);
    assert.ok(Math.abs(rounded - value) <= ulp / 2 + 1e-12, `${value} → ${rounded}`);
  }
});
