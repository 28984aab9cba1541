// The architecture rules (ARCHITECTURE.md): the checker on constructed graphs, the repository
// itself, and what importing the package really loads into the process.
import assert from "node:assert/strict";
import {
  checkArchitecture,
  type Edge,
  LIGHT_ENTRY_POINTS,
  repositoryGraph,
} from "../tools/architecture.ts";

const edge = (from: string, to: string, extra: Partial<Edge> = {}): Edge => ({
  from,
  to,
  typeOnly: false,
  dynamic: false,
  ...extra,
});

Deno.test("architecture check: finds a cycle through a type-only import", () => {
  const report = checkArchitecture(
    [
      edge("src/estimators/a.ts", "src/estimators/b.ts"),
      edge("src/estimators/b.ts", "src/estimators/a.ts", { typeOnly: true }),
      edge("src/estimators/b.ts", "src/numerics/c.ts"),
    ],
    {},
    [],
  );
  assert.deepEqual(report.cycles, [["src/estimators/a.ts", "src/estimators/b.ts"]]);
  assert.deepEqual(report.upward, []);
});

Deno.test("architecture check: finds upward imports, type-only and dynamic ones too", () => {
  const report = checkArchitecture(
    [
      edge("src/numerics/log-snr.ts", "src/models/denoiser.ts", { typeOnly: true }),
      edge("src/models/mixture.ts", "src/query/query.ts", { dynamic: true }),
      edge("src/models/onnx/unet.ts", "src/models/sd/schedule.ts"),
      edge("src/models/sd/schedule.ts", "src/models/onnx/unet.ts", { typeOnly: true }),
      edge("src/query/load-model.ts", "src/models/onnx/load-model.ts", { dynamic: true }),
    ],
    {},
    [],
  );
  assert.equal(report.upward.length, 3, report.upward.join("\n"));
  assert.match(report.upward[0], /numerics.*models/);
  assert.match(report.upward[2], /models\/sd.*models\/onnx/);
});

Deno.test("architecture check: native packages only at home, and entry points that load them", () => {
  const report = checkArchitecture(
    [
      edge("mod.ts", "src/images/png.ts"),
      edge("src/images/png.ts", "npm:sharp"),
      edge("src/images/load-image.ts", "npm:sharp", { typeOnly: true }),
      edge("src/images/sharp.ts", "npm:sharp", { dynamic: true }),
      edge("src/query/load-model.ts", "src/models/onnx/load-model.ts", { dynamic: true }),
      edge("src/models/onnx/load-model.ts", "npm:onnxruntime-node"),
      edge("mod.ts", "src/query/load-model.ts"),
    ],
    { "mod.ts": 100, "src/images/png.ts": 50 },
    ["mod.ts"],
  );
  assert.deepEqual(report.misplacedPackages.length, 1);
  assert.match(report.misplacedPackages[0], /png\.ts imports sharp/);
  assert.deepEqual(report.entries["mod.ts"], { files: 3, bytes: 150, native: ["sharp"] });
});

Deno.test("architecture check: the repository has no cycle, upward import or misplaced package", async () => {
  const { edges, sizes } = await repositoryGraph(
    new URL("..", import.meta.url).pathname.replace(/\/$/, ""),
  );
  const report = checkArchitecture(edges, sizes, LIGHT_ENTRY_POINTS);
  assert.ok(report.files > 50, `${report.files} files`);
  assert.deepEqual(report.cycles, []);
  assert.deepEqual(report.upward, []);
  assert.deepEqual(report.misplacedPackages, []);
  assert.deepEqual(report.unlayered, []);
  for (const [entry, weight] of Object.entries(report.entries)) {
    assert.deepEqual(weight.native, [], `${entry} loads native code at import`);
  }
});

/** Runs TypeScript in a fresh Deno process in the repository and returns its stdout. */
async function runInRepository(code: string): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: new URL("..", import.meta.url).pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return text.trim();
}

// The native libraries a process has mapped, read from the kernel (Linux).
const NATIVE_PROBE = `
const maps = Deno.readTextFileSync("/proc/self/maps");
const loaded = (pattern: RegExp) => maps.split("\\n").some((line) => pattern.test(line));
console.log(JSON.stringify({
  onnxruntime: loaded(/onnxruntime/), sharp: loaded(/sharp|libvips/),
}));`;

Deno.test({
  name: "importing mod.ts and querying the oracles loads neither onnxruntime nor sharp",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const light = JSON.parse(
      await runInRepository(`
import { EXAMPLE_PROMPT, exampleOracle, mixtureModel, perTokenChart } from "./mod.ts";
const oracle = exampleOracle();
const result = await oracle.info(oracle.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT).samples(8).perToken();
const mixture = mixtureModel({ shape: [1, 1, 1], components: [{ words: ["a"], mean: [1], variance: 0.1 }] });
await mixture.info(new Float32Array([1])).given("a").samples(4).total();
perTokenChart(result).svg;
${NATIVE_PROBE}`),
    );
    assert.deepEqual(light, { onnxruntime: false, sharp: false });
    // the converse: the probe does see them once they are used
    const heavy = JSON.parse(
      await runInRepository(`
import { encodePng, loadModel, rgbToPng } from "./mod.ts";
const model = await loadModel("fixtures/models/pixel-space", { device: "cpu" });
await model.dispose();
await rgbToPng(new Uint8Array(3), 1, 1);
void encodePng;
${NATIVE_PROBE}`),
    );
    assert.deepEqual(heavy, { onnxruntime: true, sharp: true });
  },
});

Deno.test({
  name: "the command line's --help loads no native library",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const loaded = JSON.parse(
      await runInRepository(`
import { main } from "./src/cli/main.ts";
const log = console.log;
console.log = () => {};
await main(["--help"]);
console.log = log;
${NATIVE_PROBE}`),
    );
    assert.deepEqual(loaded, { onnxruntime: false, sharp: false });
  },
});
