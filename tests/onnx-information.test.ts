/**
 * End to end on the exact-Gaussian ONNX fixtures: tokenizer → text encoder → VAE → timestep
 * mapping → UNet → estimator, against the closed form (REFERENCE §2).
 *
 * Truth over the sampled α range [α_min, α_max] (the model's trained range, which the default
 * log-SNR sampling covers): with K = ½∫ s(1−s)/(s·v+1−s)² dα,
 *   orthogonal  iᵒ(x; y | c) = K·‖μ(y,c) − μ(c)‖²              (no ε-dependence at all)
 *   standard    E_ε i(x; y | c) = K·(‖x − μ(c)‖² − ‖x − μ(y,c)‖²)
 * The model evaluates the nearest trained timestep, and the estimators noise at that snapped α,
 * so K is integrated at the snapped α (`informationKernel(..., snap)`); the difference to the
 * continuous integral is printed in the message (it is < 0.1% here).
 * Allowance on top of 3 SE: 1e-6 nats (quadrature and float32 rounding) for fp32 fixtures; for the
 * fp16 fixture 1% of the truth, because every UNet input and output is rounded to fp16 (relative
 * error 2⁻¹¹ per value), which perturbs ‖ε̂_y − ε̂_c‖² systematically, not randomly.
 */
import assert from "node:assert/strict";
import { loadModel } from "../src/query/load-model.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import {
  EXACT_FIXTURES,
  fixtureDir,
  type FixtureTruth,
  informationKernel,
  meanOf,
  readTruth,
  squaredDistance,
} from "./onnx-truth.ts";

const normalise = (prompt: string) => prompt.trim().split(/\s+/).filter(Boolean).join(" ");

function allowance(name: string, truth: number): number {
  return name === "sd-fp16" ? 0.01 * Math.abs(truth) + 1e-6 : 1e-6;
}

function kernel(model: OnnxModel, truth: FixtureTruth): { snapped: number; continuous: number } {
  const { min, max } = model.logSnrRange;
  return {
    snapped: informationKernel(truth.variance, min, max, (a) => model.snapLogSnr!(a)),
    continuous: informationKernel(truth.variance, min, max),
  };
}

function assertWithin(
  label: string,
  estimate: { nats: number; se: number },
  truth: number,
  allowed: number,
  note: string,
) {
  const bound = 3 * estimate.se + allowed;
  assert.ok(
    Math.abs(estimate.nats - truth) <= bound,
    `${label}: estimate ${estimate.nats.toFixed(5)} ± ${estimate.se.toFixed(5)} vs truth ` +
      `${truth.toFixed(5)} (allowed ${bound.toFixed(5)}; ${note})`,
  );
}

for (const name of EXACT_FIXTURES) {
  Deno.test(`${name}: perToken() (orthogonal) matches the closed form within 3 SE`, async () => {
    const model = await loadModel(fixtureDir(name), { device: "cpu" });
    try {
      const truth = await readTruth(name);
      const k = kernel(model, truth);
      const note = `K snapped ${k.snapped.toFixed(6)}, continuous ${k.continuous.toFixed(6)}`;
      for (const prompt of ["a red circle", "a photo of a big red dog on the green grass"]) {
        const result = await model.info(`fixtures/images/${truth.image}`).given(prompt).samples(256)
          .seed(5).perToken();
        const full = meanOf(truth, prompt);
        const total = k.snapped * squaredDistance(full, meanOf(truth, ""));
        assertWithin(
          `${name} total "${prompt}"`,
          result.total,
          total,
          allowance(name, total),
          note,
        );
        assert.equal(result.tokens.length, prompt.split(" ").length);
        for (const token of result.tokens) {
          const expected = k.snapped *
            squaredDistance(full, meanOf(truth, normalise(token.context)));
          assertWithin(
            `${name} "${token.word}" in "${prompt}"`,
            token.estimate,
            expected,
            allowance(name, expected),
            note,
          );
        }
      }
    } finally {
      await model.dispose();
    }
  });
}

for (const name of ["sd-int32-int64t", "sd-scalart-onnxdata", "pixel-space"]) {
  Deno.test(`${name}: total() with the standard estimator matches log-ratio closed form within 3 SE`, async () => {
    const model = await loadModel(fixtureDir(name), { device: "cpu" });
    try {
      const truth = await readTruth(name);
      const k = kernel(model, truth);
      const query = model.info(`fixtures/images/${truth.image}`);
      const x = await query.data();
      const prompt = "a photo of a big red dog on the green grass";
      const expected = k.snapped *
        (squaredDistance(x, meanOf(truth, "")) - squaredDistance(x, meanOf(truth, prompt)));
      const estimate = await query.given(prompt).estimator("standard").samples(400).seed(2).total();
      assertWithin(`${name} standard total`, estimate, expected, 1e-6, `K ${k.snapped}`);
      // over all of ℝ this is exactly log N(x; μ_p, v) − log N(x; μ_"", v); the trained range
      // captures most of it
      const fullLine = expected / k.snapped / (2 * truth.variance);
      assert.ok(Math.abs(expected - fullLine) < 0.2 * Math.abs(fullLine));
    } finally {
      await model.dispose();
    }
  });
}
