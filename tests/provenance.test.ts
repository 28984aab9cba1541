// Every query result records how it was made: infodiff version, model identity (content hash),
// image identity (path and content hash), prompt, the query and every estimator setting.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { VERSION } from "../src/version.ts";
import { exampleOracle, mixtureModel } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";

Deno.test("the version in provenance is deno.json's", async () => {
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  assert.equal(VERSION, config.version);
});

Deno.test("query results record version, model, image, prompt, query and settings in toJSON", async () => {
  const model = exampleOracle();
  const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
  const query = model.info(image).given(EXAMPLE_PROMPT).samples(6).seed(3).estimator("standard");
  const results = {
    total: await query.total(),
    about: await query.about("red"),
    perPixel: await query.perPixel(),
    perToken: await query.perToken(),
    nll: await query.nll(),
    pid: await query.pid("red", "circle"),
  };
  const imageHash = createHash("sha256").update(new Uint8Array(image.buffer)).digest("hex");
  for (const [terminal, result] of Object.entries(results)) {
    const json = JSON.parse(JSON.stringify(result));
    const p = json.provenance;
    assert.ok(p, `${terminal}: provenance in toJSON`);
    assert.equal(p.infodiff, VERSION);
    assert.equal(p.model.backend, "mixture oracle");
    assert.match(p.model.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(p.image, { kind: "data", sha256: imageHash });
    assert.equal(p.prompt, EXAMPLE_PROMPT);
    assert.equal(p.query.terminal, terminal);
    assert.equal(p.settings.samples, 6);
    assert.equal(p.settings.seed, 3);
    assert.equal(p.settings.estimator, "standard");
    assert.ok(p.settings.logSnr.scale > 0);
    // the oracle has no context limit: nothing was cut, and that is recorded
    assert.deepEqual(p.truncation, [], `${terminal}: truncation`);
    assert.equal(p.settings.allowTruncation, undefined, `${terminal}: allowTruncation unset`);
  }
  assert.equal(results.about.provenance?.query.word, "red");
  // a different oracle has a different content hash
  const other = mixtureModel({
    shape: [1, 1, 1],
    components: [{ words: ["a"], mean: [1], variance: 0.1 }],
  });
  const otherHash = (await other.info(new Float32Array([1])).given("a").samples(2).total())
    .provenance
    ?.model.sha256;
  assert.notEqual(otherHash, results.total.provenance?.model.sha256);
});

Deno.test("an ONNX result records the folder's content hash and the image file's", async () => {
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  try {
    const path = "fixtures/images/shapes-scene.png";
    const total = await model.info(path).given("a red circle").samples(2).total();
    const p = total.provenance!;
    assert.equal(p.model.backend, "onnx");
    assert.match(p.model.sha256, /^[0-9a-f]{64}$/);
    assert.match(p.model.runtime ?? "", /onnxruntime-node 1\.30\.0, cpu/);
    const fileHash = createHash("sha256").update(await Deno.readFile(path)).digest("hex");
    assert.deepEqual(p.image, { kind: "file", path, sha256: fileHash });
    assert.deepEqual(p.truncation, [], "4 tokens fit shapes-tiny's context of 20");
  } finally {
    await model.dispose();
  }
});
