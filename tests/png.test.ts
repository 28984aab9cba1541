import assert from "node:assert/strict";
import sharp from "sharp";
import { Heatmap } from "../src/images/heatmap.ts";
import { chwToRgb, heatmapToPng, overlayPng, rgbToPng, writePng } from "../src/images/png.ts";
import { InvalidArgumentError, InvalidImageError } from "../src/errors.ts";

const VIRIDIS_LOW = [68, 1, 84];
const VIRIDIS_HIGH = [253, 231, 37];
const MAGMA_LOW = [0, 0, 4];
const MAGMA_HIGH = [252, 253, 191];

/** Decodes a PNG with sharp into RGB and a pixel reader. */
async function decode(png: Uint8Array) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  const pixel = (x: number, y: number) => {
    const i = (y * info.width + x) * 3;
    return [data[i], data[i + 1], data[i + 2]];
  };
  return {
    width: info.width,
    height: info.height,
    format: (await sharp(png).metadata()).format,
    pixel,
  };
}

const ramp = new Heatmap(2, 2, new Float32Array([0, 1, 2, 3]));

Deno.test("heatmapToPng at native size: min and max pixels are the colormap endpoints", async () => {
  const image = await decode(await heatmapToPng(ramp));
  assert.equal(image.format, "png");
  assert.equal(image.width, 2);
  assert.equal(image.height, 2);
  assert.deepEqual(image.pixel(0, 0), VIRIDIS_LOW);
  assert.deepEqual(image.pixel(1, 1), VIRIDIS_HIGH);
  const magma = await decode(await heatmapToPng(ramp, { colormap: "magma" }));
  assert.deepEqual(magma.pixel(0, 0), MAGMA_LOW);
  assert.deepEqual(magma.pixel(1, 1), MAGMA_HIGH);
});

Deno.test("heatmapToPng upsamples to the requested size; corners keep the extreme values", async () => {
  const image = await decode(await heatmapToPng(ramp, { width: 64, height: 32 }));
  assert.equal(image.width, 64);
  assert.equal(image.height, 32);
  assert.deepEqual(image.pixel(0, 0), VIRIDIS_LOW);
  assert.deepEqual(image.pixel(63, 31), VIRIDIS_HIGH);
  await assert.rejects(() => heatmapToPng(ramp, { width: 64 }), InvalidArgumentError);
});

Deno.test("overlayPng blends (1 − α)·image + α·colour", async () => {
  const grey = { width: 4, height: 4, rgb: new Uint8Array(48).fill(128) };
  const image = await decode(await overlayPng(grey, ramp, { alpha: 0.5 }));
  assert.equal(image.width, 4);
  assert.equal(image.height, 4);
  // top-left is the map minimum: (128 + 68)/2 = 98, (128 + 1)/2 = 64.5 → 65, (128 + 84)/2 = 106
  assert.deepEqual(image.pixel(0, 0), [98, 65, 106]);
  // bottom-right is the maximum: (128 + 253)/2 = 190.5 → 191, 179.5 → 180, 82.5 → 83
  assert.deepEqual(image.pixel(3, 3), [191, 180, 83]);
  const full = await decode(await overlayPng(grey, ramp, { alpha: 1, colormap: "magma" }));
  assert.deepEqual(full.pixel(3, 3), MAGMA_HIGH);
  await assert.rejects(() => overlayPng(grey, ramp, { alpha: 1.5 }), InvalidArgumentError);
});

Deno.test("overlayPng accepts a CHW image in [−1, 1]", async () => {
  // 3×2×2 image: red channel 1, green −1, blue 0 → (255, 0, 128); α = 0 shows the image alone
  const data = new Float32Array([1, 1, 1, 1, -1, -1, -1, -1, 0, 0, 0, 0]);
  const image = await decode(await overlayPng({ data, shape: [3, 2, 2] }, ramp, { alpha: 0 }));
  assert.equal(image.width, 2);
  assert.deepEqual(image.pixel(1, 0), [255, 0, 128]);
});

Deno.test("chwToRgb: grey and RGB layouts, and rejects latents and out-of-range values", () => {
  assert.deepEqual(Array.from(chwToRgb(new Float32Array([-1, 0]), 1, 1, 2)), [
    0,
    0,
    0,
    128,
    128,
    128,
  ]);
  // CHW planes R = [1, −1], G = [0, 0], B = [−1, 1] → pixels (255, 128, 0) and (0, 128, 255)
  const rgb = chwToRgb(new Float32Array([1, -1, 0, 0, -1, 1]), 3, 1, 2);
  assert.deepEqual(Array.from(rgb), [255, 128, 0, 0, 128, 255]);
  assert.throws(
    () => chwToRgb(new Float32Array(4 * 8 * 8), 4, 8, 8),
    (e: unknown) => e instanceof InvalidArgumentError && /map/.test(e.message),
  );
  assert.throws(() => chwToRgb(new Float32Array([1.5]), 1, 1, 1), InvalidImageError);
  assert.throws(() => chwToRgb(new Float32Array(3), 1, 1, 2), InvalidImageError);
  assert.deepEqual(Array.from(chwToRgb(new Float32Array([1.5]), 1, 1, 1, { clamp: true })), [
    255,
    255,
    255,
  ]);
});

Deno.test("rgbToPng round-trips exactly and writePng creates parent folders", async () => {
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const png = await rgbToPng(rgb, 5, 3);
  const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual(Array.from(data), Array.from(rgb));
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nested/deeper/out.png`;
  await writePng(path, png);
  assert.deepEqual(await Deno.readFile(path), png);
  await Deno.remove(dir, { recursive: true });
  await assert.rejects(() => rgbToPng(new Uint8Array(4), 1, 1), InvalidArgumentError);
});
