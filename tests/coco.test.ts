import assert from "node:assert/strict";
import {
  cocoMask,
  maskBbox,
  polygonMask,
  rleDecode,
  rleEncode,
  rleFromString,
  rleToString,
} from "../src/datasets/coco-mask.ts";
import {
  categoryMask,
  parseCocoInstances,
  readCocoCaptions,
  readCocoInstances,
  writeCocoInstances,
} from "../src/datasets/coco.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { DatasetError } from "../src/errors.ts";

/** Masks, counts, strings, areas and boxes computed by pycocotools 2.0.11 (tools/make_coco_fixture.py). */
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/coco/pycocotools-masks.json", import.meta.url)),
) as {
  rle: {
    height: number;
    width: number;
    mask: string;
    counts: number[];
    string: string;
    area: number;
    bbox: number[];
  }[];
  polygons: {
    height: number;
    width: number;
    polygons: number[][];
    mask: string;
    area: number;
    bbox: number[];
  }[];
};
const bits = (s: string) => Uint8Array.from(s, (c) => Number(c));

Deno.test("compressed RLE strings: encode and decode agree with pycocotools", () => {
  assert.ok(fixture.rle.length >= 7);
  for (const c of fixture.rle) {
    assert.equal(rleToString(c.counts), c.string);
    assert.deepEqual(rleFromString(c.string), c.counts);
  }
  // the long-run case really exercises multi-character numbers and negative deltas
  const long = fixture.rle.find((c) => c.height === 200)!;
  assert.ok(long.counts.some((v, i) => i > 2 && v < long.counts[i - 2]));
  assert.ok(long.counts.some((v) => v >= 1024));
});

Deno.test("hand-checked compressed strings (from maskApi.c's rule)", () => {
  // [0,6,1,3]: '0','6','1', then 3 - 6 = -3 → 5 bits 11101 (sign bit set, no continuation) → 29+48 = 'M'
  assert.equal(rleToString([0, 6, 1, 3]), "061M");
  // 1024 = 0b1_00000_00000: low groups 0 with continuation (32+48 = 'P'), then 1
  assert.equal(rleToString([0, 1024]), "0PP1");
  assert.deepEqual(rleFromString("0PP1"), [0, 1024]);
  assert.deepEqual(rleFromString("061K"), [0, 6, 1, 1]);
});

Deno.test("uncompressed RLE is column-major: decode and encode agree with pycocotools", () => {
  for (const c of fixture.rle) {
    const expected = bits(c.mask);
    assert.deepEqual(rleDecode({ counts: c.counts, size: [c.height, c.width] }), expected);
    assert.deepEqual(rleDecode({ counts: c.string, size: [c.height, c.width] }), expected);
    assert.deepEqual(rleEncode(expected, c.height, c.width).counts, c.counts);
    assert.deepEqual(maskBbox(expected, c.height, c.width), c.bbox);
    assert.equal(expected.reduce((a, b) => a + b, 0), c.area);
  }
  // a 2×3 mask whose first ROW is set: column-major runs alternate 0,1 per column
  const rowMask = new Uint8Array([1, 1, 1, 0, 0, 0]);
  assert.deepEqual(rleEncode(rowMask, 2, 3).counts, [0, 1, 1, 1, 1, 1, 1]);
});

Deno.test("polygons rasterise like pycocotools; a hand-computed square", () => {
  // square (1,1)–(4,4): pixel centres 1.5, 2.5, 3.5 are inside → rows/cols 1..3
  const square = polygonMask([[1, 1, 4, 1, 4, 4, 1, 4]], 6, 6);
  const expected = new Uint8Array(36);
  for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) expected[y * 6 + x] = 1;
  assert.deepEqual(square, expected);
  for (const c of fixture.polygons) {
    const mask = cocoMask({ segmentation: c.polygons }, c.height, c.width);
    assert.deepEqual(mask, bits(c.mask), `polygon ${JSON.stringify(c.polygons).slice(0, 40)}`);
    assert.deepEqual(maskBbox(mask, c.height, c.width), c.bbox);
  }
});

Deno.test("malformed segmentations throw DatasetError saying what was expected", () => {
  assert.throws(() => rleDecode({ counts: [1, 2], size: [2, 2] }), /sum to 3; expected .* 4/);
  assert.throws(() => rleFromString("0~"), DatasetError);
  assert.throws(() => rleFromString("0P"), /ends inside a number/);
  assert.throws(() => cocoMask({ counts: [4], size: [2, 2] }, 3, 3), /expected them to agree/);
  assert.throws(() => polygonMask([[0, 0, 1, 1]], 4, 4), /≥ 6/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => cocoMask({ segmentation: 5 as any }, 2, 2), DatasetError);
});

Deno.test("instances: shapes export → read → every mask equals the world's object mask", async () => {
  const world = shapesWorld({ seed: 3, count: 25, split: "test" });
  const dir = await Deno.makeTempDir();
  try {
    const summary = await exportShapesDataset(world, dir);
    const coco = await readCocoInstances(`${dir}/instances.json`);
    const objects = world.scenes.flatMap((s) => s.objects.map((o) => ({ s, o })));
    assert.equal(coco.annotations.length, objects.length);
    assert.equal(summary.annotations, objects.length);
    coco.annotations.forEach((a, i) => {
      const { s, o } = objects[i];
      assert.equal(a.image_id, s.id);
      assert.equal(coco.categories.find((c) => c.id === a.category_id)!.name, o.shape);
      assert.equal(typeof (a.segmentation as { counts: unknown }).counts, "string");
      assert.deepEqual(cocoMask(a, s.size, s.size), o.mask);
      assert.equal(a.area, o.mask.reduce((x, y) => x + y, 0));
      assert.deepEqual(categoryMask(coco, s.id, o.shape), o.mask); // shapes are unique per scene
    });
    // write → read again is the identity
    await writeCocoInstances(`${dir}/again.json`, coco);
    assert.deepEqual(await readCocoInstances(`${dir}/again.json`), coco);
    const captions = await readCocoCaptions(`${dir}/captions.json`);
    assert.deepEqual(
      captions.annotations.map((a) => a.caption),
      world.scenes.map((s) => s.caption),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("instances checks name the bad entry", () => {
  const good = {
    images: [{ id: 1, file_name: "a.png", width: 2, height: 2 }],
    categories: [{ id: 1, name: "circle" }],
    annotations: [{
      id: 1,
      image_id: 1,
      category_id: 1,
      area: 1,
      bbox: [0, 0, 1, 1],
      iscrowd: 0,
      segmentation: { counts: [0, 1, 3], size: [2, 2] },
    }],
  };
  assert.equal(parseCocoInstances(good).annotations.length, 1);
  const bad = structuredClone(good);
  bad.annotations[0].image_id = 9;
  assert.throws(
    () => parseCocoInstances(bad),
    /annotations\[0\]\.image_id is 9; expected an id from images/,
  );
  const noBox = structuredClone(good) as unknown as { annotations: { bbox?: unknown }[] };
  delete noBox.annotations[0].bbox;
  assert.throws(() => parseCocoInstances(noBox), /bbox is .*expected \[x, y, width, height\]/);
  assert.throws(() => categoryMask(parseCocoInstances(good), 1, "dog"), /expected one of: circle/);
});
