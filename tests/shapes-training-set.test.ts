import assert from "node:assert/strict";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { SHAPES_VOCABULARY } from "../src/datasets/shapes/caption.ts";

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
