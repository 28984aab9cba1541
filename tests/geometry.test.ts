/**
 * Image geometry as the reference does it (issue 23, part 4 a, e, f).
 *
 * Known truths used here:
 * - Pillow 10.0.0's own output (fixtures/images/pil-resize.json, tools/make_pil_fixture.py):
 *   NEAREST on masks, BILINEAR / BICUBIC / LANCZOS on an RGB image; infodiff's port must give the
 *   same bytes;
 * - the issue's hand-derived 10 → 8 nearest columns, 0 1 3 4 5 6 8 9 (⌊(x + ½)·10/8⌋);
 * - an EXIF-tagged JPEG's stored pixels, which the reference (PIL's `Image.open`, no
 *   `exif_transpose`) reads and on which COCO masks and Visual Genome boxes are drawn.
 */
import assert from "node:assert/strict";
import { type PilFilter, pilNearest, pilResize } from "../src/images/pil-resize.ts";
import { type ImageSource, loadImagePixels, resizedImage } from "../src/images/load-image.ts";
import { loadSharp } from "../src/images/sharp.ts";
import { InvalidArgumentError, ResultsFileError } from "../src/errors.ts";
import type { Denoiser } from "../src/models/denoiser.ts";
import { createModel } from "../src/query/model.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import { interventionStudy } from "../src/studies/intervention.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import type { LocalizationRow } from "../src/studies/localization-rows.ts";
import { datasetImage } from "../src/studies/dataset-image.ts";
import { main } from "../src/cli/main.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";

interface Fixture {
  readonly pillow: string;
  readonly nearest: {
    readonly columns: readonly { in: number; out: number; columns: number[] }[];
    readonly mask: { width: number; height: number; values: number[] };
    readonly masks: readonly { width: number; height: number; values: number[] }[];
  };
  readonly resample: {
    readonly width: number;
    readonly height: number;
    readonly pixels: string;
    readonly outputs: readonly {
      filter: PilFilter;
      width: number;
      height: number;
      pixels: string;
    }[];
  };
}

const decodeBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Images resized by Pillow 10.0.0 (tools/make_pil_fixture.py). */
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/images/pil-resize.json", import.meta.url)),
) as Fixture;

Deno.test("mask nearest: the issue's 10 → 8 pixels read columns 0 1 3 4 5 6 8 9, as PIL", () => {
  const row = pilNearest(Uint8Array.from({ length: 10 }, (_, i) => i), 10, 1, 8, 1);
  assert.deepEqual(Array.from(row), [0, 1, 3, 4, 5, 6, 8, 9]);
});

Deno.test("mask nearest: every column Pillow's NEAREST reads, ties and COCO's sizes to 512 included", () => {
  assert.equal(fixture.pillow, "10.0.0");
  for (const { in: n, out, columns } of fixture.nearest.columns) {
    const index = Uint8Array.from({ length: n }, (_, i) => i % 256);
    const got = pilNearest(index, n, 1, out, 1);
    assert.deepEqual(Array.from(got), columns.map((c) => c % 256), `${n} → ${out}`);
  }
});

Deno.test("mask nearest: a 2-D mask resized by Pillow's NEAREST, byte for byte", () => {
  const { width, height, values } = fixture.nearest.mask;
  for (const expected of fixture.nearest.masks) {
    const got = pilNearest(Uint8Array.from(values), width, height, expected.width, expected.height);
    assert.deepEqual(Array.from(got), expected.values, `${expected.width}×${expected.height}`);
  }
  assert.throws(() => pilNearest(new Uint8Array(5), 2, 2, 1, 1), InvalidArgumentError);
  assert.throws(() => pilNearest(new Uint8Array(4), 2, 2, 0, 1), /outWidth must be a positive/);
});

Deno.test("resample: BILINEAR, BICUBIC and LANCZOS give Pillow's bytes, shrinking and enlarging", () => {
  const { width, height, pixels, outputs } = fixture.resample;
  const rgb = decodeBase64(pixels);
  for (const out of outputs) {
    const got = pilResize(rgb, width, height, 3, out.width, out.height, out.filter);
    const expected = decodeBase64(out.pixels);
    const differ = got.findIndex((v, i) => v !== expected[i]);
    assert.equal(
      differ,
      -1,
      `${out.filter} ${out.width}×${out.height}: first difference at ${differ}`,
    );
    assert.equal(got.length, expected.length);
  }
  assert.deepEqual(pilResize(rgb, width, height, 3, width, height, "lanczos"), rgb);
  assert.throws(
    () => pilResize(rgb, width, height, 3, 4, 4, "box" as PilFilter),
    /unknown resampling filter "box"/,
  );
});

// ---------------------------------------------------------------------------------------------
// (a) the images the studies hand the model: Pillow's resize of the whole image ("fill")

/** The fixture's RGB image as a PNG (lossless, so its pixels are the fixture's). */
async function fixturePng(): Promise<Uint8Array> {
  const { width, height, pixels } = fixture.resample;
  const png = await (await loadSharp())(decodeBase64(pixels), {
    raw: { width, height, channels: 3 },
  })
    .png().toBuffer();
  return new Uint8Array(png);
}

Deno.test("fill: a file's pixels are Pillow's resize of it, scaled to [−1, 1], for each kernel", async () => {
  const png = await fixturePng();
  const kernels = { bilinear: "linear", bicubic: "cubic", lanczos: "lanczos3" } as const;
  for (const out of fixture.resample.outputs) {
    const got = await loadImagePixels(png, out.width, out.height, "fill", kernels[out.filter]);
    const expected = decodeBase64(out.pixels);
    const plane = out.width * out.height;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        assert.equal(
          got[c * plane + p],
          Math.fround(expected[p * 3 + c] / 127.5 - 1),
          `${out.filter} ${out.width}×${out.height}, pixel ${p}, channel ${c}`,
        );
      }
    }
  }
  // what resizedImage hands to prepare holds those pixels: prepare's own resize changes nothing
  const out = fixture.resample.outputs.find((o) => o.filter === "lanczos" && o.width === 12)!;
  const image = await resizedImage(png, out.width, out.height, "fill", "lanczos3");
  const again = await loadImagePixels(image, out.width, out.height); // cover, as ONNX prepare
  assert.deepEqual(
    again,
    await loadImagePixels(png, out.width, out.height, "fill", "lanczos3"),
  );
  await assert.rejects(
    () => loadImagePixels(png, 4, 4, "fill", "box" as never),
    /kernel must be one of linear, cubic, lanczos3, got "box"/,
  );
});

/** A 32×8 strip: red on the left quarter, blue on the right quarter, grey between. */
async function stripPng(): Promise<Uint8Array> {
  const rgb = new Uint8Array(32 * 8 * 3);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 32; x++) {
      rgb.set(x < 8 ? [255, 0, 0] : x >= 24 ? [0, 0, 255] : [128, 128, 128], (y * 32 + x) * 3);
    }
  }
  const png = await (await loadSharp())(rgb, { raw: { width: 32, height: 8, channels: 3 } }).png()
    .toBuffer();
  return new Uint8Array(png);
}

/**
 * A pixel-space model of 3×8×8 data (the mixture oracle underneath) whose `prepare` decodes an
 * image as ONNX models do (`loadImagePixels` at its size, cover, EXIF turned), and records it.
 */
function pixelModel(words: readonly string[]) {
  const size = 8, d = 3 * size * size;
  const base = mixtureModel({
    shape: [3, size, size],
    components: words.map((word) => ({ words: [word], mean: new Array(d).fill(0), variance: 1 })),
  });
  const seen: Float32Array[] = [];
  const denoiser: Denoiser = {
    name: base.name,
    identity: () => base.identity!(), // the oracle's content hash: results can be resumed
    shape: base.shape,
    logSnrRange: base.logSnrRange,
    batchSize: base.batchSize,
    sharedLogSnr: base.sharedLogSnr,
    encode: (prompt) => base.encode(prompt),
    predictNoise: (batch) => base.predictNoise(batch),
    prepare: async (image) => {
      const pixels = image instanceof Float32Array
        ? image
        : await loadImagePixels(image as ImageSource, size, size);
      seen.push(pixels);
      return pixels;
    },
    dispose: () => Promise.resolve(),
  };
  return { model: createModel(denoiser), seen };
}

/** Channel c of pixel (x, y) of 3×8×8 CHW pixels. */
const at = (pixels: Float32Array, c: number, x: number, y: number) => pixels[c * 64 + y * 8 + x];

Deno.test("intervention: fit fill (the default) squashes the image with Pillow's Lanczos; cover crops", async () => {
  const png = await stripPng();
  const { model, seen } = pixelModel(["strip"]);
  const item = { image: png, caption: "a strip", word: "strip" };
  const fast = { steps: 3, samples: 4, resamples: 10, attention: false } as const;
  await interventionStudy(model, [item], fast);
  const fill = seen.at(-1)!;
  // the reference: the whole 32×8 strip resized to 8×8 with Pillow's LANCZOS (diffusers 0.20.0)
  const expected = pilResize(
    new Uint8Array(await (await loadSharp())(png).raw().toBuffer()),
    32,
    8,
    3,
    8,
    8,
    "lanczos",
  );
  for (let p = 0; p < 64; p++) {
    for (let c = 0; c < 3; c++) {
      assert.equal(fill[c * 64 + p], Math.fround(expected[p * 3 + c] / 127.5 - 1));
    }
  }
  assert.ok(at(fill, 0, 0, 4) > 0.9 && at(fill, 2, 7, 4) > 0.9, "both ends in view");
  await interventionStudy(model, [item], { ...fast, fit: "cover" });
  const cover = seen.at(-1)!;
  assert.ok(at(cover, 0, 0, 4) < 0.1 && at(cover, 2, 7, 4) < 0.1, "the centre crop is grey");
  await assert.rejects(
    () => interventionStudy(model, [item], { ...fast, fit: "stretch" as never }),
    /fit must be "fill" or "cover"/,
  );
});

Deno.test("fill reaches the model through prepare in every image study (a pending sharp resize did not)", async () => {
  // sharp keeps one resize per pipeline: a study's pending fill resize handed to an ONNX-style
  // prepare was replaced by prepare's own cover resize, so "fill" silently centre-cropped
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/strip.png`;
    await Deno.writeFile(path, await stripPng());
    const bothEnds = (pixels: Float32Array, what: string) =>
      assert.ok(at(pixels, 0, 0, 4) > 0.9 && at(pixels, 2, 7, 4) > 0.9, `${what}: both ends`);
    const relations = pixelModel(["strip"]);
    const item = { image: path, options: ["strip"], trueIndex: 0, kind: "relation", group: "g" };
    await relationStudy(relations.model, [item], { samples: 2 });
    bothEnds(relations.seen.at(-1)!, "relations");
    const localization = pixelModel(["strip"]);
    const row: LocalizationRow = {
      id: "strip",
      image: path,
      caption: "a strip",
      word: "strip",
      category: "strip",
      groundTruth: () => ({ mask: new Uint8Array(32 * 8).fill(1), width: 32, height: 8 }),
    };
    await localizationStudy(localization.model, [row], { samples: 2, methods: ["whole-image"] });
    bothEnds(localization.seen.at(-1)!, "localization");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("intervention: the results header records fit; a file written with another fit is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const results = `${dir}/edit.jsonl`;
    const { model } = pixelModel(["strip"]);
    const items = [{ image: await stripPng(), caption: "a strip", word: "strip" }];
    const fast = { steps: 3, samples: 4, resamples: 10, attention: false, results } as const;
    await interventionStudy(model, items, fast);
    const header = JSON.parse((await Deno.readTextFile(results)).split("\n")[0]);
    assert.equal(header.settings.fit, "fill");
    await assert.rejects(
      () => interventionStudy(model, items, { ...fast, fit: "cover" }),
      (error: Error) => error instanceof ResultsFileError && /fit/.test(error.message),
    );
    const resumed = await interventionStudy(model, items, { ...fast, fit: "fill" });
    assert.equal(resumed.resumed, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// (f) EXIF orientation: dataset images are read as stored, where their masks and boxes lie

/**
 * A JPEG of 32×16 stored pixels — red for x < 4, green for 4 ≤ x < 8, blue elsewhere — tagged
 * with EXIF orientation 6 (viewers turn it 90° clockwise, to 16×32).
 */
async function taggedJpeg(dir: string): Promise<string> {
  const sharp = await loadSharp();
  const rgb = new Uint8Array(32 * 16 * 3);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 32; x++) {
      rgb.set(x < 4 ? [255, 0, 0] : x < 8 ? [0, 255, 0] : [0, 0, 255], (y * 32 + x) * 3);
    }
  }
  const path = `${dir}/tagged.jpg`;
  await sharp(rgb, { raw: { width: 32, height: 16, channels: 3 } })
    .jpeg({ quality: 100, chromaSubsampling: "4:4:4" })
    .withMetadata({ orientation: 6 })
    .toFile(path);
  const meta = await sharp(path).metadata();
  assert.equal(meta.orientation, 6);
  assert.deepEqual([meta.width, meta.height], [32, 16], "sharp reports the stored size");
  return path;
}

/** Which colour (0 red, 1 green, 2 blue) dominates pixel (x, y) of 3×8×8 pixels. */
function colour(pixels: Float32Array, x: number, y: number): number {
  const values = [0, 1, 2].map((c) => at(pixels, c, x, y));
  return values.indexOf(Math.max(...values));
}

Deno.test("EXIF: a user's photo is turned as viewers show it; the studies' reading keeps the stored pixels", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await taggedJpeg(dir);
    // turned 90° clockwise: the stored left columns (red) become the top rows
    const turned = await loadImagePixels(path, 8, 8, "fill");
    assert.equal(colour(turned, 4, 0), 0);
    assert.equal(colour(turned, 4, 7), 2);
    const stored = await loadImagePixels(path, 8, 8, "fill", "linear", "stored");
    for (let y = 0; y < 8; y++) {
      assert.deepEqual([colour(stored, 0, y), colour(stored, 7, y)], [0, 2], `row ${y}`);
    }
    await assert.rejects(
      () => loadImagePixels(path, 8, 8, "fill", "linear", "upright" as never),
      /orientation must be "exif" or "stored", got "upright"/,
    );
    // a study turns a photo when handed one already turned: sharp(path).rotate()
    const { model } = pixelModel(["x"]);
    const sharp = await loadSharp();
    const upright = await datasetImage(model, sharp(path).rotate(), {
      fit: "fill",
      kernel: "linear",
      pixels: true,
    }) as Float32Array;
    assert.equal(colour(upright, 4, 0), 0);
    assert.equal(colour(upright, 4, 7), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EXIF: an ARO box on a tagged JPEG is cut from the stored pixels, where Visual Genome drew it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await taggedJpeg(dir);
    // the box holds the stored red and green columns: red left, green right, in every row
    const item = {
      image: path,
      bbox: [0, 0, 8, 16] as const,
      options: ["green", "red"],
      trueIndex: 1,
      kind: "relation" as const,
      group: "left of",
    };
    for (const loadImage of [undefined, "pixels"] as const) {
      const { model, seen } = pixelModel(["red", "green"]);
      const result = await relationStudy(model, [item], { samples: 2, loadImage });
      assert.equal(result.failures.length, 0, JSON.stringify(result.failures));
      const pixels = seen.at(-1)!;
      for (let y = 0; y < 8; y++) {
        assert.deepEqual(
          [colour(pixels, 0, y), colour(pixels, 7, y)],
          [0, 1],
          `${loadImage ?? "prepare"}: row ${y} runs red to green`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EXIF: a COCO mask drawn on a tagged JPEG's stored pixels lies on its object in the model's image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await taggedJpeg(dir);
    // the object (red) is the stored columns x < 4: the mask COCO would draw there
    const mask = Uint8Array.from({ length: 32 * 16 }, (_, i) => (i % 32 < 4 ? 1 : 0));
    const row: LocalizationRow = {
      id: "tagged",
      image: path,
      caption: "a red block",
      word: "red",
      category: "red",
      groundTruth: () => ({ mask, width: 32, height: 16 }),
    };
    for (const loadImage of [undefined, "pixels"] as const) {
      const { model, seen } = pixelModel(["red"]);
      const result = await localizationStudy(model, [row], {
        samples: 2,
        methods: ["whole-image"],
        keepMaps: true,
        loadImage,
      });
      assert.equal(result.failures.length, 0, JSON.stringify(result.failures));
      const seenMask = result.maps(result.rows[0].id)!.mask;
      const pixels = seen.at(-1)!;
      // Pillow's nearest reads stored column ⌊(x + ½)·4⌋: 2 (red) for model column 0, then 6, 10, …
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          const inMask = seenMask.data[y * 8 + x] === 1;
          assert.equal(inMask, x === 0, `${loadImage ?? "prepare"}: mask at (${x}, ${y})`);
          assert.equal(colour(pixels, x, y) === 0, inMask, `red at (${x}, ${y}) iff masked`);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli intervene --fit cover: the study runs with it and its results header says so", async () => {
  const world = shapesWorld({ seed: 4, count: 1, split: "test" });
  const dir = await Deno.makeTempDir();
  try {
    await exportShapesDataset(world, dir);
    const scene = world.scenes[0];
    const image = `${dir}/images/${scene.id}.png`;
    await Deno.writeTextFile(
      `${dir}/items.json`,
      JSON.stringify([{ image, caption: scene.caption, word: scene.caption.split(" ")[1] }]),
    );
    const code = await main([
      "intervene",
      ...["--model", "fixtures/models/shapes-tiny", "--device", "cpu", "--quiet"],
      ...["--items", `${dir}/items.json`, "--steps", "2", "--samples", "2"],
      ...["--fit", "cover", "--results", `${dir}/edit.jsonl`],
    ], () => {});
    assert.equal(code, 0);
    const header = JSON.parse((await Deno.readTextFile(`${dir}/edit.jsonl`)).split("\n")[0]);
    assert.equal(header.settings.fit, "cover");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
