// The command table: every command's own --help, --version, the scalar query commands (--json
// prints numbers, never maps) on an ONNX fixture, and summarize on a results file (no model).
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
import { main } from "../src/cli/main.ts";
import { COMMANDS } from "../src/cli/commands.ts";
import { VERSION } from "../src/version.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { loadSharp } from "../src/images/sharp.ts";

async function capture(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await main(args, (line) => lines.push(line));
  return { code, lines };
}

const QUERY = [
  "--model",
  "fixtures/models/sd-vpred",
  "--image",
  "fixtures/images/test-64.png",
  "--prompt",
  "a red circle",
  "--samples",
  "6", // 3 antithetic pairs: the fewest that give a standard error
  "--device",
  "cpu",
  "--json",
];

/** True when any object in the value has a key named "map" or "data" (a map in the output). */
const hasMaps = (value: unknown): boolean =>
  typeof value === "object" && value !== null &&
  Object.entries(value).some(([k, v]) => k === "map" || k === "data" || hasMaps(v));

Deno.test("cli: every command has its own --help with an example; --version", async () => {
  for (const command of COMMANDS) {
    const { code, lines } = await capture([command.name, "--help"]);
    assert.equal(code, 0, command.name);
    assert.match(lines.join("\n"), new RegExp(`^infodiff ${command.name}`), command.name);
    assert.match(lines.join("\n"), /example: infodiff /, command.name);
  }
  assert.deepEqual((await capture(["--version"])).lines, [`infodiff ${VERSION}`]);
  const general = (await capture(["--help"])).lines.join("\n");
  for (const command of COMMANDS) assert.match(general, new RegExp(`\\n  ${command.name} `));
  // the intervention study fixes its estimator forms (and refuses --estimator): its help omits it
  const help = async (name: string) => (await capture([name, "--help"])).lines.join("\n");
  assert.doesNotMatch(await help("intervene"), /--estimator/);
  assert.match(await help("localize"), /--estimator orthogonal\|standard/);
});

Deno.test("cli: an option of another command is refused for this one", async () => {
  await assert.rejects(
    () => main(["total", ...QUERY, "--word", "red"], () => {}),
    InvalidArgumentError,
  );
  await assert.rejects(() => main(["about", ...QUERY], () => {}), /about needs --word/);
  await assert.rejects(() => main(["pid", ...QUERY, "--a", "red"], () => {}), /pid needs --b/);
  await assert.rejects(
    () => main(["total", ...QUERY, "--estimator", "exact"], () => {}),
    /unknown estimator "exact"/,
  );
});

Deno.test("cli: total, about, nll and pid print scalars and provenance with --json, no maps", async () => {
  const runs: Record<string, string[]> = {
    total: ["total", ...QUERY],
    about: ["about", ...QUERY, "--word", "red"],
    nll: ["nll", ...QUERY],
    pid: ["pid", ...QUERY, "--a", "red", "--b", "circle"],
    info: ["info", ...QUERY],
  };
  for (const [name, args] of Object.entries(runs)) {
    const { code, lines } = await capture(args);
    assert.equal(code, 0, name);
    const json = JSON.parse(lines[0]);
    assert.ok(!hasMaps(json), `${name} printed a map`);
    assert.equal(json.provenance.model.backend, "onnx", name);
    assert.equal(json.provenance.settings.samples, 6, name);
  }
  const total = JSON.parse((await capture(runs.total)).lines[0]);
  assert.ok(Number.isFinite(total.nats) && Number.isFinite(total.se) && total.samples === 6);
  const pid = JSON.parse((await capture(runs.pid)).lines[0]);
  for (const term of ["redundancy", "uniqueA", "uniqueB", "synergy", "informationBoth"]) {
    assert.ok(Number.isFinite(pid.conditional[term].nats), term);
  }
  const text = (await capture(runs.total.filter((a) => a !== "--json"))).lines[0];
  assert.match(
    text,
    /^-?\d+\.\d{4} ± \d+\.\d{4} nats \(n=6, 95 % \[-?\d+\.\d{4}, -?\d+\.\d{4}\]\)$/,
  );
});

Deno.test("cli summarize: tables, chart (SVG and PNG) and report.html from a results file alone", async () => {
  const model = mixtureModel({
    shape: [1, 1, 2],
    components: [
      { words: ["red"], mean: [1, 0], variance: 0.05 },
      { words: ["blue"], mean: [0, 1], variance: 0.05 },
    ],
  });
  const dir = await Deno.makeTempDir();
  const results = `${dir}/relations.jsonl`;
  const items = ["a", "b", "c"].map((group, i) => ({
    image: `${group}.png`,
    options: ["blue", "red"],
    trueIndex: i % 2,
    kind: "relation",
    group,
  }));
  const study = await relationStudy(model, items, {
    samples: 8,
    estimator: "standard",
    results,
    loadImage: () => Promise.resolve(new Float32Array([1, 0])),
  });
  const out = `${dir}/report`;
  const { code, lines } = await capture(["summarize", results, "--out", out]);
  assert.equal(code, 0);
  assert.match(
    lines.join("\n"),
    /wrote summary\.txt, summary\.json, chart\.svg, chart\.png, report\.html/,
  );
  // the summary rebuilt from the file is the study's own
  assert.equal(await Deno.readTextFile(`${out}/summary.txt`), study.toString() + "\n");
  const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
  assert.equal(summary.header.study, "relations");
  assert.equal(summary.result.accuracy.correct, study.accuracy.correct);
  const html = await Deno.readTextFile(`${out}/report.html`);
  assert.match(html, /<h2>Provenance<\/h2>/);
  assert.ok(html.includes(summary.header.model.sha256));
  assert.match(html, /<svg/);
  const png = await (await loadSharp())(`${out}/chart.png`).metadata();
  assert.equal(png.format, "png");
  await assert.rejects(
    () => main(["summarize", results], () => {}),
    /needs one results file and --out/,
  );
});

Deno.test("device ids: for CUDA only, checked before the model loads", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  await assert.rejects(
    () => loadModel("fixtures/models/pixel-space", { device: "webgpu", deviceId: 1 }),
    /deviceId selects a CUDA device/,
  );
  await assert.rejects(
    () => loadModel("fixtures/models/pixel-space", { device: "cpu", deviceId: -1 }),
    InvalidArgumentError,
  );
  await assert.rejects(
    () =>
      main([
        "total",
        ...QUERY.map((a) => a.replace("fixtures/models/sd-vpred", "/no/model")),
        "--device-id",
        "1",
      ], () => {}),
    /--device-id selects a CUDA device; --device cpu/,
  );
});

Deno.test("cli generate and invert: a PNG and its data, and x_T as .npy of the data's shape", async () => {
  const out = await Deno.makeTempDir();
  const model = ["--model", "fixtures/models/shapes-tiny", "--device", "cpu"];
  const gen = await capture([
    "generate",
    ...model,
    "--prompt",
    "a red circle",
    "--steps",
    "4",
    "--seed",
    "2",
    "--out",
    `${out}/red.png`,
  ]);
  assert.equal(gen.code, 0, gen.lines.join("\n"));
  const meta = await (await loadSharp())(`${out}/red.png`).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ["png", 32, 32]);
  const npyHeader = new TextDecoder().decode(
    (await Deno.readFile(`${out}/red.npy`)).subarray(10, 80),
  );
  assert.match(npyHeader, /'shape': \(3, 32, 32\)/);
  const inv = await capture([
    "invert",
    ...model,
    "--image",
    `${out}/red.png`,
    "--prompt",
    "a red circle",
    "--steps",
    "4",
    "--out",
    `${out}/xT.npy`,
  ]);
  assert.equal(inv.code, 0, inv.lines.join("\n"));
  assert.match(
    new TextDecoder().decode((await Deno.readFile(`${out}/xT.npy`)).subarray(10, 80)),
    /'shape': \(3, 32, 32\)/,
  );
  await assert.rejects(
    () => main(["generate", ...model, "--prompt", "x", "--out", `${out}/a.jpg`], () => {}),
    /does not end in \.png/,
  );
  await assert.rejects(
    () =>
      main(
        ["invert", ...model, "--image", "i", "--prompt", "x", "--out", `${out}/a.bin`],
        () => {},
      ),
    /\.npy/,
  );
});
