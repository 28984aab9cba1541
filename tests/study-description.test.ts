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
    adapt: false,
    precision: { se: 0.05, maxSamples: 400 },
    batchSize: 7,
    drawsPerLogSnr: 4,
    allowOutsideTrainedRange: true,
    allowTruncation: true,
    onDraws: () => {},
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

Deno.test("a fitted proposal's description holds every profile a query may draw from", () => {
  const model = exampleOracle();
  const profile = {
    kind: "infodiff.logSnrProfile",
    version: 1,
    model: { name: model.name, shape: [...model.shape] },
    edges: [0, 1, 2],
    mass: [0.5, 0.5],
    words: { red: { mass: [0.9, 0.1], contrasts: 2 } },
    wholePrompt: { mass: [0.2, 0.8], contrasts: 1 },
    defensiveShare: 0.1,
    calibration: { created: "a date that changes no number" },
  } as const;
  const settings = estimatorSettings(model, resolveOptions(model, { proposal: profile }));
  // the word profiles change the numbers, so a results file resumed with others is refused
  assert.deepEqual(settings.proposal, {
    kind: "fitted",
    lambda: 0.1,
    mass: [0.5, 0.5],
    words: { red: [0.9, 0.1] },
    wholePrompt: [0.2, 0.8],
  });
});
