import assert from "node:assert/strict";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { SHAPES_VOCABULARY } from "../src/datasets/shapes/caption.ts";

const CONVERSE: Record<string, string> = {
  "left of": "right of",
  "right of": "left of",
  above: "below",
  below: "above",
};

Deno.test("tools/export_training_set.ts writes images.u8, captions, vocabulary and meta", async () => {
  const out = await Deno.makeTempDir();
  try {
    const tool = new URL("../tools/export_training_set.ts", import.meta.url).pathname;
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", tool, "--out", out, "--count", "40", "--seed", "9", "--split", "test"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    const world = shapesWorld({ seed: 9, count: 40, split: "test" });
    const bytes = await Deno.readFile(`${out}/images.u8`);
    assert.equal(bytes.length, 40 * 32 * 32 * 3);
    world.scenes.forEach((s, i) =>
      assert.deepEqual(bytes.subarray(i * 3072, (i + 1) * 3072), s.rgb)
    );
    const captions = JSON.parse(await Deno.readTextFile(`${out}/captions.json`));
    assert.deepEqual(captions, world.scenes.map((s) => s.caption));
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${out}/vocabulary.json`)),
      SHAPES_VOCABULARY,
    );
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${out}/meta.json`)), {
      count: 40,
      size: 32,
      seed: 9,
      split: "test",
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("--both-orders writes each multi-object scene twice, the second naming its second object first", async () => {
  const out = await Deno.makeTempDir();
  try {
    const tool = new URL("../tools/export_training_set.ts", import.meta.url).pathname;
    const args = ["--out", out, "--count", "30", "--seed", "4", "--min-objects", "2"];
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", tool, ...args, "--same-shape-share", "0.5", "--both-orders"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    const world = shapesWorld({ seed: 4, count: 30, minObjects: 2, sameShapeShare: 0.5 });
    const captions: string[] = JSON.parse(await Deno.readTextFile(`${out}/captions.json`));
    const bytes = await Deno.readFile(`${out}/images.u8`);
    assert.equal(captions.length, 60);
    assert.equal(bytes.length, 60 * 3072);
    world.scenes.forEach((scene, i) => {
      const [a, b, ...rest] = scene.objects;
      const name = (o: typeof a) => `a ${o.sizeNamed ? `${o.size} ` : ""}${o.colour} ${o.shape}`;
      const third = rest.length ? ` and ${name(rest[0])}` : "";
      assert.equal(captions[2 * i], scene.caption);
      assert.equal(
        captions[2 * i + 1],
        `${name(b)} ${CONVERSE[scene.relation!]} ${name(a)}${third}`,
      );
      for (const row of [2 * i, 2 * i + 1]) {
        assert.deepEqual(bytes.subarray(row * 3072, (row + 1) * 3072), scene.rgb);
      }
    });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${out}/meta.json`)), {
      count: 60,
      size: 32,
      seed: 4,
      split: "train",
      scenes: 30,
      minObjects: 2,
      sameShapeShare: 0.5,
      bothOrders: true,
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
