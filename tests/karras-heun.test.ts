/**
 * The Karras–Heun ODE sampler against closed forms.
 *
 * Known truths used here:
 * - the Karras schedule: σ_k = (σ_max^(1/ρ) + k/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, ρ = 7, with
 *   σ = e^(−α/2) at the ends of the log-SNR range ([−5, 7] for a model without one);
 * - data N(μ, v·I) (a one-component mixture oracle, whose ε̂ is exact) has the probability-flow
 *   ODE dx/dσ = σ(x − μ)/(v + σ²), solved by x − μ ∝ √(v + σ²): inverting from the data (the
 *   state at σ_min) to σ_max multiplies x − μ by √((v + σ_max²)/(v + σ_min²)); Heun's method is
 *   2nd order, so doubling the levels divides its error by 4;
 * - on a model with trained timesteps every level is a trained noise level, and levels that snap
 *   to the same timestep are merged.
 */
import assert from "node:assert/strict";
import { heunBatch, KARRAS_RHO, karrasLevels } from "../src/generation/karras-heun.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { NoiseSchedule } from "../src/models/sd/schedule.ts";
import type { Denoiser } from "../src/models/denoiser.ts";

const v = 0.3, mu = [0.5, -1];
const gaussian = mixtureModel({
  shape: [1, 1, 2],
  components: [{ words: ["x"], mean: mu, variance: v }],
});

Deno.test("the Karras schedule matches its closed form at every level", () => {
  const sigma = karrasLevels(exampleOracle(), 100);
  const min = Math.exp(-7 / 2), max = Math.exp(5 / 2);
  for (const k of [0, 1, 37, 99]) {
    const expected = (max ** (1 / KARRAS_RHO) + (k / 99) * (min ** (1 / KARRAS_RHO) -
          max ** (1 / KARRAS_RHO))) ** KARRAS_RHO;
    assert.ok(Math.abs(sigma[k] - expected) < 1e-12 * expected, `level ${k}`);
  }
  assert.throws(() => karrasLevels(exampleOracle(), 1), /at least 2/);
});

Deno.test("inversion of Gaussian data follows the exact probability-flow ODE, to 2nd order", async () => {
  const x = new Float32Array([1.2, -0.4]);
  const relativeError = async (steps: number) => {
    const sigma = karrasLevels(gaussian, steps);
    const [top] = await heunBatch(gaussian, [{ prompt: "x", start: x }], "invert", { steps });
    const [sMax, sMin] = [sigma[0], sigma[sigma.length - 1]];
    const growth = Math.sqrt((v + sMax ** 2) / (v + sMin ** 2));
    const vp = 1 / Math.sqrt(1 + sMax ** 2); // the returned state is variance-preserving
    const expected = (mu[0] + (x[0] - mu[0]) * growth) * vp;
    return { error: (top[0] - expected) / expected, top };
  };
  const at100 = await relativeError(100), at200 = await relativeError(200);
  // measured −4.3e-4 and −1.06e-4: Heun's global error falls as 1/steps²
  assert.ok(Math.abs(at100.error) < 1e-3, `${at100.error}`);
  const order = Math.log2(at100.error / at200.error);
  assert.ok(order > 1.8 && order < 2.2, `convergence order ${order}`);
  const [back] = await heunBatch(gaussian, [{ prompt: "x", start: at100.top }], "generate");
  for (let j = 0; j < 2; j++) assert.ok(Math.abs(back[j] - x[j]) < 1e-4, `${back[j]}`);
});

Deno.test("on a trained schedule every level is a trained timestep's σ, repeats merged", () => {
  const schedule = NoiseSchedule.fromConfig({
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    beta_end: 0.012,
    num_train_timesteps: 1000,
  });
  const model = {
    ...exampleOracle(),
    logSnrRange: { min: schedule.logSnr[999], max: schedule.logSnr[0] },
    snapLogSnr: (a: number) => schedule.snapLogSnr(a),
  } as Denoiser;
  const sigma = karrasLevels(model, 100);
  const trained = new Set(Array.from(schedule.logSnr, (a) => Math.exp(-a / 2)));
  assert.ok(sigma.every((s) => trained.has(s)));
  assert.ok(sigma.every((s, k) => k === 0 || s < sigma[k - 1]), "strictly decreasing");
  // ρ = 7 crowds the low-σ end, where trained timesteps are sparse in σ: some levels merge
  assert.ok(sigma.length < 100 && sigma.length > 80, `${sigma.length} levels`);
});
