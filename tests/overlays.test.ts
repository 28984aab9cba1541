// Labelled overlays, the shared colour scale, the grid, and .npy maps that NumPy reads back.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
import { Heatmap } from "../src/images/heatmap.ts";
import { heatmapToNpy } from "../src/images/npy.ts";
import { heatmapToPng } from "../src/images/png.ts";
import { loadSharp } from "../src/images/sharp.ts";
import { labelledOverlay, overlayGrid, sharedRange } from "../src/plots/overlays.ts";
import { writeTokenOutputs } from "../src/cli/outputs.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { NUMPY, pythonWith } from "./helpers.ts";

const numpy = await pythonWith("overlays: .npy read back by NumPy", NUMPY);

const oracle = exampleOracle();
const x = oracle.sample(EXAMPLE_PROMPT, { seed: 1 });
const result = await oracle.info(x).given(EXAMPLE_PROMPT).samples(16).perToken();
const image = { data: x, shape: [3, 16, 16] as const };

async function pixels(png: Uint8Array) {
  const { data, info } = await (await loadSharp())(png).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  return { data, width: info.width, height: info.height };
}

Deno.test({
  name: ".npy maps are read back by NumPy with the same shape and values",
  ignore: numpy.ignore,
}, async () => {
  const map = new Heatmap(3, 2, new Float32Array([0.5, -1.25, 3, 1e-7, 0, 42]));
  const path = await Deno.makeTempFile({ suffix: ".npy" });
  await Deno.writeFile(path, heatmapToNpy(map));
  const output = await new Deno.Command(numpy.interpreter(), {
    args: [
      "-c",
      "import numpy, sys, json; a = numpy.load(sys.argv[1]); print(json.dumps([list(a.shape), str(a.dtype), a.ravel().tolist()]))",
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const [shape, dtype, values] = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.deepEqual(shape, [2, 3]);
  assert.equal(dtype, "float32");
  assert.deepEqual(values, Array.from(map.data));
});

Deno.test("a shared colour scale shows a weak map as dark, its own scale stretches it to full brightness", async () => {
  const ramp = (top: number) =>
    new Heatmap(8, 1, Float32Array.from({ length: 8 }, (_, i) => (top * i) / 7));
  const weak = ramp(0.01), strong = ramp(1); // like "a" (0.08 nats) beside "yellow" (2.56)
  const range = { min: 0, max: 1 };
  const brightness = async (png: Uint8Array) => {
    const { data } = await pixels(png);
    return data.reduce((s, v) => s + v, 0) / data.length;
  };
  const weakShared = await brightness(await heatmapToPng(weak, { range }));
  const weakOwn = await brightness(await heatmapToPng(weak));
  const strongShared = await brightness(await heatmapToPng(strong, { range }));
  assert.ok(
    weakShared < weakOwn - 20,
    `weak: ${weakShared} on the shared scale, ${weakOwn} on its own`,
  );
  assert.equal(weakOwn, strongShared, "on its own scale the weak map looks like the strong one");
  await assert.rejects(
    () => heatmapToPng(strong, { range: { min: 0, max: 0.5 } }),
    InvalidArgumentError,
  );
  // the scale of a per-token result covers every word's map
  const shared = sharedRange(result);
  for (const t of result.tokens) assert.ok(t.map.max() <= shared.max && t.map.min() >= shared.min);
});

Deno.test("labelled overlay: the image size plus a label strip with text; the grid's geometry", async () => {
  const one = await pixels((await labelledOverlay(result.token("red"), image)).png);
  assert.equal(one.width, 16);
  assert.equal(one.height, 16 + 48);
  const grid = await pixels((await overlayGrid(result, image, { columns: 4, panelWidth: 64 })).png);
  assert.equal(grid.width, 4 * 64);
  assert.equal(grid.height, 2 * (64 + 48) + 46); // 6 words in 2 rows, then the colour bar
  // the label strip under the first panel holds dark text on white
  let dark = 0;
  for (let y = 64; y < 64 + 48; y++) {
    for (let x = 0; x < 64; x++) if (grid.data[3 * (y * grid.width + x)] < 100) dark++;
  }
  assert.ok(dark > 20, `${dark} dark label pixels`);
});

Deno.test("the output folder: what the model saw, per word overlay, map and .npy, the grid, result.json", async () => {
  const out = await Deno.makeTempDir();
  const files = await writeTokenOutputs(result, image, out);
  for (const t of result.tokens) {
    for (
      const f of [
        `${t.index}-${t.word}.png`,
        `${t.index}-${t.word}-map.png`,
        `maps/${t.index}-${t.word}.npy`,
      ]
    ) {
      assert.ok(files.includes(f) && (await Deno.stat(`${out}/${f}`)).isFile, f);
    }
  }
  for (const f of ["image.png", "grid.png", "result.json"]) {
    assert.ok((await Deno.stat(`${out}/${f}`)).isFile, f);
  }
  assert.equal((await pixels(await Deno.readFile(`${out}/1-red-map.png`))).width, 16);
  const saved = JSON.parse(await Deno.readTextFile(`${out}/result.json`));
  assert.equal(saved.provenance.model.backend, "mixture oracle");
});
