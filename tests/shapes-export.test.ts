import assert from "node:assert/strict";
import sharp from "sharp";
import { readCocoIt } from "../src/datasets/coco-it.ts";
import { readCocoInstances } from "../src/datasets/coco.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { promptWords } from "../src/text/prompt.ts";

const world = shapesWorld({ seed: 4, count: 30, split: "test" });

Deno.test("export: PNGs hold the scene pixels; COCO-IT rows are word-bounded", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const summary = await exportShapesDataset(world, dir);
    assert.equal(summary.images, 30);
    for (const scene of world.scenes.slice(0, 10)) {
      const { data, info } = await sharp(`${dir}/images/${scene.id}.png`).raw().toBuffer({
        resolveWithObject: true,
      });
      assert.deepEqual([info.width, info.height, info.channels], [32, 32, 3]);
      assert.deepEqual(new Uint8Array(data), scene.rgb);
    }
    const coco = await readCocoInstances(`${dir}/instances.json`);
    assert.deepEqual(coco.images[0], { id: 1, file_name: "images/1.png", width: 32, height: 32 });

    const rows = await readCocoIt(`${dir}/coco_it.jsonl`);
    const objects = world.scenes.reduce((n, s) => n + s.objects.length, 0);
    assert.equal(rows.length, 2 * objects);
    assert.equal(summary.cocoItRows, rows.length);
    for (const row of rows) {
      const scene = world.scenes[row.image_id! - 1];
      assert.equal(row.image, `${dir}/images/${scene.id}.png`);
      assert.equal(row.caption, scene.caption);
      const object = scene.objects.find((o) => o.colour === row.word || o.shape === row.word)!;
      assert.equal(row.category, object.shape);
      // the context is the caption's words with exactly this one word taken out
      const words = promptWords(row.caption).map((w) => w.word);
      words.splice(words.indexOf(row.word), 1);
      assert.deepEqual(promptWords(row.context).map((w) => w.word), words);
      assert.equal(row.context, words.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
