import assert from "node:assert/strict";
import { InvalidArgumentError, ModelLoadError } from "../src/errors.ts";
import { betasFromConfig, NoiseSchedule, vToEpsilon } from "../src/models/sd/schedule.ts";
import { Random } from "../src/numerics/random.ts";

const SD = {
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  beta_end: 0.012,
  num_train_timesteps: 1000,
};

Deno.test("SD scaled_linear schedule: trained log-SNR range matches REFERENCE §4", () => {
  const schedule = NoiseSchedule.fromConfig(SD);
  assert.equal(schedule.length, 1000);
  assert.ok(Math.abs(schedule.logSnr[0] - 7.069) < 5e-4, `α₀ = ${schedule.logSnr[0]}`);
  assert.ok(Math.abs(schedule.logSnr[999] + 5.364) < 5e-4, `α₉₉₉ = ${schedule.logSnr[999]}`);
  assert.deepEqual(schedule.range, { min: schedule.logSnr[999], max: schedule.logSnr[0] });
  // β_t = (sqrt(0.00085) + t/999·(sqrt(0.012) − sqrt(0.00085)))²
  assert.ok(Math.abs(schedule.betas[0] - 0.00085) < 1e-15);
  assert.ok(Math.abs(schedule.betas[999] - 0.012) < 1e-15);
});

Deno.test("nearest timestep: α = 1 → 214, α = 0 → 354, ends clamp to the table", () => {
  const schedule = NoiseSchedule.fromConfig(SD);
  assert.equal(schedule.nearestTimestep(1), 214);
  assert.equal(schedule.nearestTimestep(0), 354);
  assert.equal(schedule.nearestTimestep(100), 0);
  assert.equal(schedule.nearestTimestep(-100), 999);
  assert.equal(schedule.snapLogSnr(1), schedule.logSnr[214]);
  assert.throws(() => schedule.nearestTimestep(NaN), InvalidArgumentError);
});

Deno.test("nearest timestep agrees with a linear scan for random α (binary search is exact)", () => {
  const schedule = NoiseSchedule.fromConfig(SD);
  const random = new Random(7);
  for (let k = 0; k < 2000; k++) {
    const alpha = -7 + 16 * random.uniform();
    let best = 0;
    for (let t = 1; t < schedule.length; t++) {
      if (Math.abs(schedule.logSnr[t] - alpha) < Math.abs(schedule.logSnr[best] - alpha)) best = t;
    }
    const found = schedule.nearestTimestep(alpha);
    // ties (equal distance) may resolve either way; distances must be equal then
    assert.equal(
      Math.abs(schedule.logSnr[found] - alpha),
      Math.abs(schedule.logSnr[best] - alpha),
      `α=${alpha}`,
    );
  }
});

Deno.test("linear, squaredcos_cap_v2 and trained_betas schedules", () => {
  const linear = betasFromConfig({ beta_schedule: "linear", beta_start: 1e-4, beta_end: 0.02 });
  assert.equal(linear.length, 1000);
  assert.ok(Math.abs(linear[0] - 1e-4) < 1e-15 && Math.abs(linear[999] - 0.02) < 1e-15);
  assert.ok(Math.abs(linear[500] - (1e-4 + (500 / 999) * (0.02 - 1e-4))) < 1e-15);

  // cosine: ᾱ_t = f(t+1)/f(0) with f(u) = cos²((u/T + s)/(1 + s)·π/2) wherever no beta is capped
  const cosine = NoiseSchedule.fromConfig({ beta_schedule: "squaredcos_cap_v2" });
  const f = (u: number) => Math.cos(((u / 1000 + 0.008) / 1.008) * Math.PI / 2) ** 2;
  for (const t of [0, 10, 500, 900]) {
    assert.ok(Math.abs(cosine.alphasCumprod[t] - f(t + 1) / f(0)) < 1e-12, `t=${t}`);
  }
  assert.equal(cosine.betas[999], 0.999);

  const trained = NoiseSchedule.fromConfig({
    trained_betas: [0.1, 0.2, 0.5],
    beta_schedule: "linear",
  });
  assert.deepEqual(Array.from(trained.alphasCumprod), [0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.5]);
  assert.ok(Math.abs(trained.logSnr[0] - Math.log(9)) < 1e-12);
});

Deno.test("unsupported schedules and prediction types are refused with the value named", () => {
  assert.throws(
    () => NoiseSchedule.fromConfig({ beta_schedule: "sigmoid" }),
    (e: Error) => e instanceof ModelLoadError && e.message.includes('"sigmoid"'),
  );
  assert.throws(
    () => NoiseSchedule.fromConfig({ ...SD, prediction_type: "sample" }),
    (e: Error) => e instanceof ModelLoadError && e.message.includes('"sample"'),
  );
  assert.throws(() => new NoiseSchedule(Float64Array.from([0.1, 1.5])), ModelLoadError);
});

Deno.test("v → ε: ε = sqrt(ᾱ)·v + sqrt(1−ᾱ)·z recovers the true noise", () => {
  const random = new Random(3);
  const d = 16;
  const abar = [0.999, 0.5, 0.01];
  const noise = new Float32Array(abar.length * d);
  const clean = new Float32Array(abar.length * d);
  random.fillGaussian(noise);
  random.fillGaussian(clean);
  const z = new Float32Array(noise.length);
  const v = new Float32Array(noise.length);
  abar.forEach((s, i) => {
    for (let j = i * d; j < (i + 1) * d; j++) {
      z[j] = Math.sqrt(s) * clean[j] + Math.sqrt(1 - s) * noise[j];
      v[j] = Math.sqrt(s) * noise[j] - Math.sqrt(1 - s) * clean[j];
    }
  });
  const eps = vToEpsilon(v, z, abar, d);
  for (let j = 0; j < eps.length; j++) assert.ok(Math.abs(eps[j] - noise[j]) < 1e-5);
});
