// The display pieces notebooks are built from: Figure, the labelled picture grid, the result
// table, and the studies' figures — what they draw, checked in the pixels and the text.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
import { Heatmap } from "../src/images/heatmap.ts";
import { encodePng } from "../src/images/encode-png.ts";
import { loadSharp } from "../src/images/sharp.ts";
import { colormapTable } from "../src/images/colormap.ts";
import { JUPYTER_DISPLAY } from "../src/jupyter.ts";
import { Figure } from "../src/plots/figure.ts";
import { imageGrid, imageStrip } from "../src/plots/panels.ts";
import { resultTable } from "../src/plots/table.ts";
import { interventionStrip } from "../src/plots/study-figures.ts";
import { interveneOne } from "../src/studies/intervention.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";

async function pixels(png: Uint8Array) {
  const { data, info } = await (await loadSharp())(png).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  const at = (x: number, y: number) =>
    Array.from(data.subarray(3 * (y * info.width + x), 3 * (y * info.width + x) + 3));
  return { data, width: info.width, height: info.height, at };
}

Deno.test("Figure: size from the PNG header, PNG + text display, refuses bytes that are not PNG", async () => {
  const figure = new Figure(encodePng(new Uint8Array(5 * 3 * 3).fill(9), 5, 3), "nine");
  assert.equal(figure.width, 5);
  assert.equal(figure.height, 3);
  const bundle = figure[JUPYTER_DISPLAY]();
  assert.deepEqual(Object.keys(bundle).sort(), ["image/png", "text/plain"]);
  const back = Uint8Array.from(atob(bundle["image/png"]), (c) => c.charCodeAt(0));
  assert.deepEqual(back, figure.png);
  assert.equal((await pixels(back)).at(4, 2)[0], 9);
  assert.throws(() => new Figure(new Uint8Array(30), "x"), InvalidArgumentError);
  await assert.rejects(() => figure.save("/tmp/x.svg"), InvalidArgumentError);
});

Deno.test("imageStrip: each image enlarged pixel-exactly under its label; a map's colours and its colour bar", async () => {
  // a 2×2 image: red, green / blue, white
  const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
  const image = { width: 2, height: 2, rgb };
  const map = new Heatmap(2, 2, new Float32Array([0, 0, 0, 4]));
  const strip = await imageStrip([
    { label: "image", image },
    { label: "map", map, unit: "nats/px", caption: "Σ 4" },
  ], { size: 64 });
  const gap = 10, label = 22;
  assert.equal(strip.width, gap + 64 + gap + 64 + gap);
  const p = await pixels(strip.png);
  // nearest-neighbour: every quadrant of the 64-px picture is one source pixel
  assert.deepEqual(p.at(gap + 16, label + gap + 16), [255, 0, 0]);
  assert.deepEqual(p.at(gap + 48, label + gap + 16), [0, 255, 0]);
  assert.deepEqual(p.at(gap + 16, label + gap + 48), [0, 0, 255]);
  // the map panel: min–max normalised viridis, 0 → the table's first colour, 4 → its last
  const viridis = colormapTable("viridis");
  const x0 = 2 * gap + 64;
  assert.deepEqual(p.at(x0 + 16, label + gap + 16), Array.from(viridis.subarray(0, 3)));
  assert.deepEqual(p.at(x0 + 48, label + gap + 48), Array.from(viridis.subarray(765, 768)));
  // the colour bar under the caption runs from dark (left) to bright (right)
  const barY = gap + label + 64 + 18 + 8;
  const left = p.at(x0 + 2, barY), right = p.at(x0 + 61, barY);
  assert.ok(left[0] + left[1] < right[0] + right[1], `bar ${left} → ${right}`);
  // the label strip above each picture holds dark text on white
  let dark = 0;
  for (let y = gap; y < gap + label; y++) {
    for (let x = gap; x < gap + 64; x++) if (p.at(x, y)[0] < 100) dark++;
  }
  assert.ok(dark > 20, `${dark} dark label pixels`);
  assert.equal(strip.description, "image | map (Σ 4)");
});

Deno.test("imageGrid: rows with headings; bad input is refused with what was expected", async () => {
  const image = { width: 1, height: 1, rgb: new Uint8Array([0, 0, 0]) };
  const grid = await imageGrid([[{ label: "a", image }], [{ label: "b", image }, {
    label: "c",
    image,
  }]], {
    size: 32,
    rowLabels: ["one", "two"],
    title: "grid",
  });
  assert.equal(grid.width, 10 + 2 * (32 + 10));
  assert.equal(grid.description, "grid\none: a\ntwo: b | c");
  await assert.rejects(() => imageGrid([[{ label: "x" }]]), /neither an image nor a map/);
  await assert.rejects(() => imageGrid([[]]), InvalidArgumentError);
  await assert.rejects(() => imageStrip([{ label: "x", image }], { size: 3 }), /panel size/);
  await assert.rejects(
    () => imageGrid([[{ label: "a", image }]], { rowLabels: [] }),
    /one per row/,
  );
});

Deno.test("resultTable: aligned text and HTML, estimates as value ± SE, pictures as <img>", () => {
  const figure = new Figure(encodePng(new Uint8Array(3), 1, 1), "a dot");
  const table = resultTable([
    { word: "red", information: { nats: 0.8096, se: 0.2231 }, map: figure },
    { word: "a\nan", information: { nats: 0, se: 0 }, extra: 3 },
  ], { title: "per word" });
  assert.equal(
    table.toString(),
    [
      "per word",
      "word   information    map          extra",
      "-----  -------------  -----------  -----",
      "red    0.810 ± 0.223  [image 1×1]  —",
      "a; an  0.000 ± 0.000  —            3",
    ].join("\n"),
  );
  const html = table[JUPYTER_DISPLAY]()["text/html"];
  assert.match(html, /<caption>per word<\/caption>/);
  assert.match(html, /<img alt="a dot" width="1" src="data:image\/png;base64,/);
  assert.match(html, /<td style="text-align:left">a<br>an<\/td>/);
  assert.equal(resultTable([{ x: -Infinity, y: NaN }]).toString().split("\n")[2], "−∞  —");
  assert.equal(
    resultTable([{ m: { mean: 1.5, se: 0.25, n: 4 } }], { digits: 2 }).toString().split("\n")[2],
    "1.50 ± 0.25",
  );
  assert.throws(() => resultTable([]), InvalidArgumentError);
});

Deno.test("interventionStrip: original | reconstruction | edit | change | information, from one intervention", async () => {
  const model = exampleOracle();
  const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
  const one = await interveneOne(model, { image, caption: EXAMPLE_PROMPT, word: "red" }, {
    sampler: "ddim",
    steps: 5,
    samples: 8,
  });
  const strip = await interventionStrip(model, one, { size: 32 });
  assert.equal(strip.width, 10 + 5 * (32 + 10));
  assert.match(
    strip.description,
    /^remove "red": "a red circle on the left" → "a _ circle on the left"\noriginal \| reconstruction \| edit \| change \(Σ .*\) \| information \(.* nats\)$/,
  );
  const swap = await interveneOne(model, {
    image,
    caption: EXAMPLE_PROMPT,
    word: "red",
    replacement: "blue",
  }, { sampler: "ddim", steps: 5, samples: 8 });
  assert.match(
    (await interventionStrip(model, swap, { size: 32 })).description,
    /^swap "red": "a red circle on the left" → "a blue circle on the left"\n/,
  );
  // the original panel shows the original's pixels
  const p = await pixels(strip.png);
  const y = 10 + 30 + 22 + 16, x = 10 + 16;
  const expected = Array.from(
    { length: 3 },
    (_, c) =>
      Math.min(255, Math.max(0, Math.round(((one.original[c * 256 + 8 * 16 + 8] + 1) / 2) * 255))),
  );
  p.at(x, y).forEach((v, c) =>
    assert.ok(Math.abs(v - expected[c]) <= 2, `channel ${c}: ${v} vs ${expected[c]}`)
  );
});

Deno.test("localizationGallery and relationItemsTable draw a study's rows from its files", async () => {
  const { shapesWorld } = await import("../src/datasets/shapes/world.ts");
  const { exportShapesDataset } = await import("../src/datasets/shapes/export.ts");
  const { readAro } = await import("../src/datasets/aro.ts");
  const { shapesOracle } = await import("../src/query/oracles.ts");
  const { localizationStudy } = await import("../src/studies/localization.ts");
  const { relationStudy } = await import("../src/studies/relations.ts");
  const { localizationGallery, relationItemsTable } = await import("../src/plots/study-figures.ts");
  const dir = await Deno.makeTempDir();
  const world = shapesWorld({ seed: 1, count: 3, split: "test" });
  await exportShapesDataset(world, dir);
  const oracle = shapesOracle(world);
  const dataset = { table: `${dir}/coco_it.jsonl`, instances: `${dir}/instances.json` };
  const options = { samples: 4, loadImage: "pixels" as const };
  const withMaps = await localizationStudy(oracle, dataset, { ...options, keepMaps: true });
  const gallery = await localizationGallery(withMaps, { count: 2, size: 32 });
  const [title, first] = gallery.description.split("\n");
  assert.match(title, /IoU at threshold 0.4/);
  const row = withMaps.rows[0];
  assert.ok(first.startsWith(`"${row.word}" in "${row.caption}"`), first);
  assert.match(first, /image \| mask \(\d+ px\) \| information \(IoU \d\.\d\d\)$/);
  assert.equal(gallery.description.split("\n").length, 3);
  const withoutMaps = await localizationStudy(oracle, dataset, options);
  await assert.rejects(() => localizationGallery(withoutMaps), /keepMaps: true/);

  const items = await readAro(`${dir}/aro_relation.json`);
  const relations = await relationStudy(oracle, items, { ...options, estimator: "standard" });
  const table = await relationItemsTable(relations, { count: 2 });
  assert.equal(table.rows.length, 2);
  const item = relations.items[0];
  const text = String(table.rows[0][1]);
  assert.ok(text.includes(`▶ ${item.options[item.chosen]}:`), text);
  assert.ok(text.split("\n")[item.trueIndex].endsWith(" ✓"), text);
  assert.equal(table.rows[0][2], item.correct ? "yes" : "no");
});

Deno.test("panel captions: estimates print as nats ± SE, long text wraps to at most three lines", async () => {
  const image = { width: 1, height: 1, rgb: new Uint8Array([0, 0, 0]) };
  const plain = await imageStrip([{ label: "a", image }], { size: 160 });
  const one = await imageStrip([{ label: "a", image, caption: { nats: 1.234, se: 0.05 } }], {
    size: 160,
  });
  assert.equal(one.description, "a (1.23 ± 0.05 nats)");
  const long = "a red circle below a yellow square and a blue triangle left of a green square";
  const wrapped = await imageStrip([{ label: "a", image, caption: long }], { size: 160 });
  const longer = await imageStrip([{ label: "a", image, caption: `${long} ${long}` }], {
    size: 160,
  });
  assert.equal(one.height - plain.height, 15 + 4, "one caption line");
  assert.equal(wrapped.height - plain.height, 3 * 15 + 4, "wrapped to three lines");
  assert.equal(longer.height, wrapped.height, "never more than three");
});

Deno.test("localizationGallery draws each image as the study fed it: its fit, stored pixels (no EXIF turn)", async () => {
  // A 96×32 JPEG of three colour bands, tagged with EXIF orientation 6 (viewers turn it a quarter).
  // A "fill" study saw it squashed to the model's square, as stored; a centre crop ("cover") would
  // show the green band alone, and an EXIF turn would lay the bands across.
  const { LocalizationResult } = await import("../src/studies/localization-result.ts");
  const { localizationGallery } = await import("../src/plots/study-figures.ts");
  const { loadImagePixels } = await import("../src/images/load-image.ts");
  const sharp = await loadSharp();
  const bands = new Uint8Array(96 * 32 * 3).map((_, i) => {
    const x = Math.floor(i / 3) % 96, c = i % 3;
    return c === Math.floor(x / 32) ? 255 : 0;
  });
  const dir = await Deno.makeTempDir();
  await sharp(bands, { raw: { width: 96, height: 32, channels: 3 } }).jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 }).toFile(`${dir}/bands.jpg`);
  const record = {
    image: "bands.jpg",
    caption: "a red circle",
    word: "red",
    category: "circle",
    context: "a circle",
    nats: 1,
    se: 0.1,
    seed: 7,
    maskArea: 4,
    pixels: 16,
    thresholds: [0.4],
    ious: { information: [0.5] },
  };
  const map = new Heatmap(4, 4, Float32Array.from({ length: 16 }, (_, i) => i / 15));
  const galleryOf = (fit: "fill" | "cover" | undefined) =>
    localizationGallery(
      new LocalizationResult({
        run: { results: [{ id: "a", result: record }], failures: [], resumed: 0, total: 1 },
        methods: ["information"],
        thresholds: [0.4],
        fixedThreshold: 0.4,
        unavailable: new Map(),
        maps: new Map([["a", { information: map, mask: map }]]),
        samples: 10,
        model: "m",
        ...(fit === undefined ? {} : { fit }),
      }),
      { imagesDir: dir, size: 32 },
    );
  const expected = async (fit: "fill" | "cover", orientation: "stored" | "exif") => {
    const image = {
      data: await loadImagePixels(`${dir}/bands.jpg`, 32, 32, fit, "linear", orientation),
      shape: [3, 32, 32] as const,
    };
    return (await imageGrid([[
      { label: "image", image },
      { label: "mask", map, image, alpha: 0.5, caption: "4 px" },
      { label: "information", map, image, caption: "IoU 0.50" },
    ]], {
      size: 32,
      rowLabels: [`"red" in "a red circle" (1.00 ± 0.10 nats)`],
      title: "maps min–max normalised; IoU at threshold 0.4",
    })).png;
  };
  const fill = (await galleryOf("fill")).png;
  assert.deepEqual(fill, await expected("fill", "stored"));
  assert.notDeepEqual(fill, await expected("fill", "exif"));
  assert.notDeepEqual(fill, await expected("cover", "stored"));
  assert.deepEqual((await galleryOf("cover")).png, await expected("cover", "stored"));
});
