import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { inflateSync } from "node:zlib";
import { Heatmap } from "../src/images/heatmap.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { JUPYTER_DISPLAY } from "../src/jupyter.ts";

function assertClose(actual: ArrayLike<number>, expected: number[], tolerance: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance,
      `index ${i}: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

Deno.test("constructor rejects a data length that does not match width·height", () => {
  assert.throws(() => new Heatmap(3, 2, new Float32Array(5)), InvalidArgumentError);
  assert.throws(() => new Heatmap(0, 2, new Float32Array(0)), InvalidArgumentError);
  assert.throws(() => new Heatmap(1, 1, new Float32Array([NaN])), InvalidArgumentError);
});

Deno.test("sum, min, max, mean of a known map", () => {
  const map = new Heatmap(3, 2, new Float32Array([1, -2, 3, 4, 0.5, 6]));
  assert.equal(map.sum(), 12.5);
  assert.equal(map.min(), -2);
  assert.equal(map.max(), 6);
  assert.equal(map.mean(), 12.5 / 6);
  assert.equal(map.at(2, 1), 6);
});

Deno.test("normalize maps min→0 and max→1; a constant map becomes zeros", () => {
  const n = new Heatmap(4, 1, new Float32Array([-1, 0, 1, 3])).normalize();
  assertClose(n.data, [0, 0.25, 0.5, 1], 0);
  const flat = new Heatmap(2, 2, new Float32Array([7, 7, 7, 7])).normalize();
  assert.deepEqual(Array.from(flat.data), [0, 0, 0, 0]);
});

Deno.test("bilinear 2×2 → 4×4 matches the hand-computed align_corners=False result", () => {
  // Source x (and y) of output d is (d + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25 → clamped to
  // [0, 1]: 0, 0.25, 0.75, 1. Input [[0, 1], [2, 3]] = x + 2y, so out = wx + 2·wy.
  const up = new Heatmap(2, 2, new Float32Array([0, 1, 2, 3])).upsample(4, 4);
  const w = [0, 0.25, 0.75, 1];
  const expected = w.flatMap((wy) => w.map((wx) => wx + 2 * wy));
  assertClose(up.data, expected, 1e-7);
});

Deno.test("upsampling a constant map keeps it constant (both methods)", () => {
  const map = new Heatmap(3, 5, new Float32Array(15).fill(2.5));
  for (const method of ["bilinear", "bicubic"] as const) {
    const up = map.upsample(11, 7, { method });
    assertClose(up.data, new Array(77).fill(2.5), 1e-6);
  }
});

// Oracles: torch 1.13, F.interpolate(x[None, None], size=(5, 7), mode=…, align_corners=False)
// with x = [[0, 1, -2], [3.5, 0.25, 2]], rounded to 6 decimals.
const SMALL = new Float32Array([0, 1, -2, 3.5, 0.25, 2]);

Deno.test("bilinear 3×2 → 7×5 equals PyTorch", () => {
  const torch = [
    0.0,
    0.142857,
    0.571429,
    1.0,
    -0.285714,
    -1.571429,
    -2.0,
    0.35,
    0.432143,
    0.678571,
    0.925,
    -0.157143,
    -1.239286,
    -1.6,
    1.75,
    1.589286,
    1.107143,
    0.625,
    0.357143,
    0.089286,
    0.0,
    3.15,
    2.746429,
    1.535714,
    0.325,
    0.871429,
    1.417857,
    1.6,
    3.5,
    3.035714,
    1.642857,
    0.25,
    1.0,
    1.75,
    2.0,
  ];
  assertClose(new Heatmap(3, 2, SMALL).upsample(7, 5).data, torch, 2e-6);
});

Deno.test("bicubic 3×2 → 7×5 equals PyTorch (a = −0.75, border clamping)", () => {
  const torch = [
    -0.546431,
    -0.161963,
    0.835981,
    1.082688,
    -0.242509,
    -1.995397,
    -2.826243,
    0.215773,
    0.400074,
    0.938972,
    0.9385,
    -0.089074,
    -1.347604,
    -1.957404,
    1.872995,
    1.622084,
    1.1629,
    0.625,
    0.244534,
    0.060861,
    -0.068331,
    3.53022,
    2.844096,
    1.386828,
    0.3115,
    0.578142,
    1.469327,
    1.820744,
    4.292423,
    3.406133,
    1.48982,
    0.167313,
    0.731577,
    2.117119,
    2.689581,
  ];
  const up = new Heatmap(3, 2, SMALL).upsample(7, 5, { method: "bicubic" });
  assertClose(up.data, torch, 2e-6);
});

Deno.test("shrinking 5×4 → 2×3 equals PyTorch for both methods", () => {
  const data = Float32Array.from({ length: 20 }, (_, i) => i ** 1.5);
  const map = new Heatmap(5, 4, data);
  assertClose(map.upsample(2, 3).data, [
    2.92797,
    8.86769,
    24.54282,
    35.98524,
    57.98105,
    73.02534,
  ], 2e-4);
  assertClose(map.upsample(2, 3, { method: "bicubic" }).data, [
    2.0637,
    8.23258,
    22.83447,
    35.25558,
    58.49013,
    74.64017,
  ], 2e-4);
});

Deno.test("upsample rejects bad sizes and methods", () => {
  const map = Heatmap.zeros(2, 2);
  assert.throws(() => map.upsample(0, 4), InvalidArgumentError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => map.upsample(4, 4, { method: "nearest" as any }), InvalidArgumentError);
});

Deno.test("threshold, add, scale, mean, zeros", () => {
  const a = new Heatmap(2, 2, new Float32Array([0.1, 0.4, 0.5, 0.9]));
  assert.deepEqual(Array.from(a.threshold(0.4)), [0, 1, 1, 1]);
  assertClose(a.add(a).data, [0.2, 0.8, 1.0, 1.8], 1e-7);
  assertClose(a.scale(10).data, [1, 4, 5, 9], 1e-6);
  const b = new Heatmap(2, 2, new Float32Array([0.3, 0.0, 0.5, 0.1]));
  assertClose(Heatmap.mean([a, b]).data, [0.2, 0.2, 0.5, 0.5], 1e-7);
  assert.equal(Heatmap.zeros(3, 4).data.length, 12);
  assert.throws(() => a.add(Heatmap.zeros(1, 4)), InvalidArgumentError);
  assert.throws(() => Heatmap.mean([]), InvalidArgumentError);
  // the original is untouched
  assertClose(a.data, [0.1, 0.4, 0.5, 0.9], 1e-7);
});

Deno.test("toJSON / fromJSON round-trip", () => {
  const map = new Heatmap(2, 1, new Float32Array([0.5, -2]));
  const json = JSON.parse(JSON.stringify(map));
  assert.deepEqual(json, { width: 2, height: 1, data: [0.5, -2] });
  assert.deepEqual(Heatmap.fromJSON(json), map);
});

Deno.test("Jupyter display: a synchronous PNG of ≥ 256 px coloured with viridis", () => {
  assert.equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  assert.ok(
    Object.hasOwn(Heatmap.prototype, JUPYTER_DISPLAY),
    "display must be a prototype method",
  );
  const map = new Heatmap(8, 8, Float32Array.from({ length: 64 }, (_, i) => i));
  const bundle = map[JUPYTER_DISPLAY]();
  const png = Buffer.from(bundle["image/png"], "base64");
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const width = png.readUInt32BE(16), height = png.readUInt32BE(20);
  assert.equal(width, 256);
  assert.equal(height, 256);
  // decode the single IDAT: first pixel (value 0) is viridis(0), last (value 1) is viridis(1)
  const idatLength = png.readUInt32BE(33);
  assert.equal(png.subarray(37, 41).toString("latin1"), "IDAT");
  const raw = inflateSync(png.subarray(41, 41 + idatLength));
  assert.equal(raw.length, (width * 3 + 1) * height);
  assert.deepEqual([...raw.subarray(1, 4)], [68, 1, 84]);
  assert.deepEqual([...raw.subarray(raw.length - 3)], [253, 231, 37]);
});
