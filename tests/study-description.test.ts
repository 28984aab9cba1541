// A study's estimator options reach the estimator: none is dropped on the way (drawsPerLogSnr,
// allowOutsideTrainedRange once were, silently), and the ones that change the numbers are in the
// results file's description.
import assert from "node:assert/strict";
import { estimatorOptions, estimatorSettings } from "../src/studies/study-description.ts";
import { resolveOptions } from "../src/estimators/options.ts";
import { exampleOracle } from "../src/query/oracles.ts";

Deno.test("every estimator option of a study reaches the estimator and its description", () => {
  const given = {
    samples: 40,
    seed: 3,
    estimator: "standard",
    logSnr: { clip: 4 },
    design: "iid",
    proposal: "logistic",
    precision: { se: 0.05, maxSamples: 400 },
    batchSize: 7,
    drawsPerLogSnr: 4,
    allowOutsideTrainedRange: true,
    results: "r.jsonl",
    rowsInFlight: 2,
  } as const;
  const picked = estimatorOptions(given);
  const { results: _r, rowsInFlight: _f, ...expected } = given;
  assert.deepEqual(picked, expected);
  const model = exampleOracle();
  const settings = estimatorSettings(model, resolveOptions(model, picked));
  assert.equal(settings.design, "iid");
  assert.equal(settings.proposal, "logistic");
  assert.deepEqual(settings.precision, { se: 0.05, maxSamples: 400 });
  assert.equal(settings.drawsPerLogSnr, 4);
  assert.ok(!("batchSize" in settings), "the batch size never changes the numbers");
});
