import assert from "node:assert/strict";
import sharp from "sharp";
import { DOMParser } from "linkedom";
import { Heatmap } from "../src/images/heatmap.ts";
import { Chart } from "../src/plots/chart.ts";
import { informationBars } from "../src/plots/information-bars.ts";
import { heatmapPlot } from "../src/plots/heatmap-plot.ts";
import { scatterPlot } from "../src/plots/scatter-plot.ts";
import { groupedBars } from "../src/plots/grouped-bars.ts";
import { ERROR_BAR_DESCRIPTION } from "../src/plots/render.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { JUPYTER_DISPLAY } from "../src/jupyter.ts";

// deno-lint-ignore no-explicit-any
type Node = any;

/** Parses chart SVG as XML (fails on malformed markup) and returns its root element. */
function parse(chart: Chart): Node {
  const doc = new DOMParser().parseFromString(chart.svg, "image/svg+xml");
  const root = doc.documentElement;
  assert.equal(root.tagName.toLowerCase(), "svg");
  assert.equal(root.getAttribute("xmlns"), "http://www.w3.org/2000/svg");
  return root;
}

const all = (root: Node, selector: string): Node[] => [...root.querySelectorAll(selector)];
const num = (el: Node, name: string) => Number(el.getAttribute(name));
const texts = (root: Node, label: string) =>
  all(root, `g[aria-label="${label}"] text`).map((t) => t.textContent);

async function pngSize(png: Uint8Array): Promise<[number, number, string | undefined]> {
  const meta = await sharp(png).metadata();
  return [meta.width, meta.height, meta.format];
}

Deno.test("informationBars: one bar per row in order, heights ∝ nats, error bars span ±2 SE", () => {
  const rows = [
    { label: "a", nats: 2, se: 0.1 },
    { label: "red", nats: 1, se: 0.3 },
    { label: "circle", nats: 0.5, se: 0.05 },
  ];
  const root = parse(informationBars(rows, { title: "MI per word" }));
  const bars = all(root, 'g[aria-label="bar"] rect');
  assert.equal(bars.length, 3);
  assert.deepEqual(texts(root, "x-axis tick label"), ["a", "red", "circle"]);
  // bars are left to right in row order and their heights are proportional to nats
  const xs = bars.map((b) => num(b, "x"));
  assert.ok(xs[0] < xs[1] && xs[1] < xs[2]);
  const heights = bars.map((b) => num(b, "height"));
  assert.ok(Math.abs(heights[0] / heights[1] - 2) < 1e-9);
  assert.ok(Math.abs(heights[1] / heights[2] - 2) < 1e-9);
  // error bar length = 4·se in the same pixel scale as the bars (pixels per nat = height / nats)
  const rules = all(root, `g[aria-description="${ERROR_BAR_DESCRIPTION}"] line`);
  assert.equal(rules.length, 3);
  const perNat = heights[0] / 2;
  rules.forEach((rule, i) => {
    const length = Math.abs(num(rule, "y2") - num(rule, "y1"));
    assert.ok(Math.abs(length - 4 * rows[i].se * perNat) < 1e-6, `rule ${i}: ${length}`);
  });
  assert.ok(all(root, "text").some((t) => t.textContent === "MI per word"));
  assert.throws(() => informationBars([]), InvalidArgumentError);
  assert.throws(() => informationBars([rows[0], rows[0]]), InvalidArgumentError);
  assert.throws(() => informationBars([{ label: "x", nats: 1, se: -1 }]), InvalidArgumentError);
});

Deno.test("informationBars: a row's interval is drawn instead of ±2 SE; perTokenChart uses the estimates'", async () => {
  // bars of 2 and 1 nats: the first with an asymmetric interval [1.5, 3], the second ±2 SE
  const rows = [
    { label: "red", nats: 2, se: 0.25, interval: { low: 1.5, high: 3 } },
    { label: "circle", nats: 1, se: 0.1 },
  ];
  const root = parse(informationBars(rows));
  const heights = all(root, 'g[aria-label="bar"] rect').map((b) => num(b, "height"));
  const perNat = heights[0] / 2;
  const [first, second] = all(root, `g[aria-description="${ERROR_BAR_DESCRIPTION}"] line`)
    .map((rule) => [num(rule, "y1"), num(rule, "y2")].sort((a, b) => a - b));
  assert.ok(Math.abs(first[1] - first[0] - 1.5 * perNat) < 1e-6, `interval: ${first}`);
  assert.ok(Math.abs(second[1] - second[0] - 0.4 * perNat) < 1e-6, `±2 SE: ${second}`);
  assert.throws(
    () => informationBars([{ label: "x", nats: 1, se: 0.1, interval: { low: 1.2, high: 2 } }]),
    /low ≤ nats ≤ high, got \[1.2, 2\] around 1/,
  );
  // a per-token result's bars span each word's reported interval
  const { perTokenChart } = await import("../src/plots/per-token-chart.ts");
  const { exampleOracle } = await import("../src/query/oracles.ts");
  const { EXAMPLE_PROMPT } = await import("../src/models/example.ts");
  const model = exampleOracle();
  const result = await model.info(model.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT)
    .samples(40).perToken();
  const chart = parse(perTokenChart(result));
  const ruleLengths = all(chart, `g[aria-description="${ERROR_BAR_DESCRIPTION}"] line`)
    .map((rule) => Math.abs(num(rule, "y2") - num(rule, "y1")));
  const bars = all(chart, 'g[aria-label="bar"] rect').map((b) => num(b, "height"));
  const tokens = result.tokens.filter((t) => !t.truncated);
  const scale = bars[1] / Math.abs(tokens[1].estimate.nats);
  tokens.forEach((t, i) => {
    const { low, high } = t.estimate.interval!;
    assert.ok(
      Math.abs(ruleLengths[i] - (high - low) * scale) < 1e-6 * (1 + ruleLengths[i]),
      t.word,
    );
  });
});

Deno.test("heatmapPlot: one cell per value, coloured with the colormap endpoints", () => {
  const map = new Heatmap(8, 4, Float32Array.from({ length: 32 }, (_, i) => i));
  const root = parse(heatmapPlot(map));
  const cells = all(root, 'g[aria-label="cell"] rect');
  assert.equal(cells.length, 32);
  const fills = cells.map((c) => c.getAttribute("fill"));
  assert.equal(fills[0], "rgb(68,1,84)"); // value 0 → viridis(0), top-left
  assert.equal(fills[31], "rgb(253,231,37)"); // value 31 → viridis(1), bottom-right
  assert.ok(num(cells[0], "y") < num(cells[31], "y"), "row 0 is drawn at the top");
  // square cells
  assert.ok(Math.abs(num(cells[0], "width") - num(cells[0], "height")) < 1e-9);
  // the colour bar under the map: dark to bright, labelled with the map's min and max (and unit)
  const bar = parse(heatmapPlot(map, { unit: "nats/px" }));
  const ramp = all(bar, ":scope > rect");
  assert.equal(ramp.length, 64);
  assert.equal(ramp[0].getAttribute("fill"), "rgb(68,1,84)");
  assert.equal(ramp[63].getAttribute("fill"), "rgb(253,231,37)");
  assert.ok(num(ramp[0], "y") > num(cells[31], "y"), "the bar lies under the map");
  const labels = all(bar, ":scope > text").map((t) => t.textContent);
  assert.deepEqual(labels, ["0", "31.0 nats/px"]);
  const magma = parse(heatmapPlot(map, { colormap: "magma" }));
  assert.equal(
    all(magma, 'g[aria-label="cell"] rect')[31].getAttribute("fill"),
    "rgb(252,253,191)",
  );
  assert.throws(() => heatmapPlot(Heatmap.zeros(65, 64)), InvalidArgumentError);
  assert.equal(
    all(parse(heatmapPlot(Heatmap.zeros(64, 64))), 'g[aria-label="cell"] rect').length,
    4096,
  );
});

Deno.test("scatterPlot: Pearson r in the title and the least-squares line through the right points", () => {
  // x = 1..4, y = 1, 3, 2, 4: r = 4/5 = 0.8 exactly; least squares y = 0.5 + 0.8·x
  const points = [
    { x: 1, y: 1, label: "first" },
    { x: 2, y: 3 },
    { x: 3, y: 2 },
    { x: 4, y: 4, label: "last" },
  ];
  const root = parse(scatterPlot(points, { title: "MI vs mIoU", xLabel: "MI", yLabel: "mIoU" }));
  assert.ok(
    all(root, "text").some((t) => t.textContent === "MI vs mIoU (Pearson r = 0.800, n = 4)"),
  );
  const dots = all(root, 'g[aria-label="dot"] circle');
  assert.equal(dots.length, 4);
  assert.deepEqual(texts(root, "text"), ["first", "last"]);
  // recover the linear pixel scales from the dots at (1, 1) and (4, 4) …
  const [cx1, cy1, cx4, cy4] = [
    num(dots[0], "cx"),
    num(dots[0], "cy"),
    num(dots[3], "cx"),
    num(dots[3], "cy"),
  ];
  const px = (x: number) => cx1 + (x - 1) * (cx4 - cx1) / 3;
  const py = (y: number) => cy1 + (y - 1) * (cy4 - cy1) / 3;
  // … and check the fitted line runs from (1, 1.3) to (4, 3.7)
  const path = all(root, 'g[aria-label="line"] path')[0].getAttribute("d");
  const coordinates = path.match(/-?[\d.]+(e-?\d+)?/g)!.map(Number);
  const expected = [px(1), py(1.3), px(4), py(3.7)];
  assert.equal(coordinates.length, 4);
  coordinates.forEach((v: number, i: number) => assert.ok(Math.abs(v - expected[i]) < 1e-6));
  assert.throws(() => scatterPlot([{ x: 1, y: 1 }]), InvalidArgumentError);
  assert.throws(() => scatterPlot([{ x: 1, y: 1 }, { x: 1, y: 2 }]), InvalidArgumentError);
});

Deno.test("groupedBars: one bar per row, group and method labels, error bars only where se given", () => {
  const rows = [
    { group: "COCO", method: "MI", value: 0.4, se: 0.02 },
    { group: "COCO", method: "DAAM", value: 0.2, se: 0.01 },
    { group: "shapes", method: "MI", value: 0.8, se: 0.05 },
    { group: "shapes", method: "DAAM", value: 0.6 },
  ];
  const root = parse(groupedBars(rows, { yLabel: "mIoU", title: "segmentation" }));
  const bars = all(root, 'g[aria-label="bar"] rect');
  assert.equal(bars.length, 4);
  const heights = bars.map((b) => num(b, "height"));
  assert.ok(Math.abs(heights[0] / heights[1] - 2) < 1e-9);
  assert.ok(Math.abs(heights[2] / heights[0] - 2) < 1e-9);
  assert.equal(bars[0].getAttribute("fill"), bars[2].getAttribute("fill"), "one colour per method");
  assert.notEqual(bars[0].getAttribute("fill"), bars[1].getAttribute("fill"));
  assert.deepEqual(texts(root, "fx-axis tick label"), ["COCO", "shapes"]);
  assert.deepEqual(texts(root, "x-axis tick label"), ["MI", "DAAM", "MI", "DAAM"]);
  assert.equal(all(root, `g[aria-description="${ERROR_BAR_DESCRIPTION}"] line`).length, 3);
  assert.throws(() => groupedBars([rows[0], rows[0]]), InvalidArgumentError);
  assert.throws(() => groupedBars([]), InvalidArgumentError);
});

Deno.test("Chart: toPNG has the SVG's size (×scale), display bundle is its PNG and description (no SVG)", async () => {
  const chart = informationBars([{ label: "w", nats: 1, se: 0.1 }], { width: 300, height: 200 });
  assert.equal(chart.width, 300);
  assert.equal(chart.height, 200);
  assert.deepEqual(await pngSize(await chart.toPNG()), [300, 200, "png"]);
  assert.deepEqual(await pngSize(await chart.toPNG({ scale: 2 })), [600, 400, "png"]);
  const map = heatmapPlot(new Heatmap(2, 2, new Float32Array([0, 1, 2, 3])));
  const [w, h] = await pngSize(await map.toPNG());
  assert.equal(w, map.width);
  assert.equal(h, map.height);
  const bundle = await chart[JUPYTER_DISPLAY]();
  assert.deepEqual(Object.keys(bundle).sort(), ["image/png", "text/plain"]);
  assert.deepEqual(
    await pngSize(Uint8Array.from(atob(bundle["image/png"]), (c) => c.charCodeAt(0))),
    [300, 200, "png"],
  );
  const titled = informationBars([{ label: "w", nats: 1, se: 0.1 }], { title: "one word" });
  assert.equal((await titled[JUPYTER_DISPLAY]())["text/plain"], "one word");
  assert.ok(Object.hasOwn(Chart.prototype, JUPYTER_DISPLAY));
  assert.throws(() => new Chart("<figure></figure>"), InvalidArgumentError);
  const dir = await Deno.makeTempDir();
  await chart.save(`${dir}/x/chart.png`);
  assert.deepEqual(await pngSize(await Deno.readFile(`${dir}/x/chart.png`)), [300, 200, "png"]);
  await Deno.remove(dir, { recursive: true });
});
