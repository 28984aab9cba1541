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

Deno.test("beta_start, beta_end, trained betas and num_train_timesteps out of range are refused by name and value", () => {
  // before: a negative beta_start reached the constructor as √(−0.001) and was reported "beta_0 = NaN"
  const refused = (config: Record<string, unknown>, field: string, value: string) =>
    assert.throws(
      () => NoiseSchedule.fromConfig(config, "sd/scheduler_config.json"),
      (e: Error) =>
        e instanceof ModelLoadError &&
        e.message.startsWith(`sd/scheduler_config.json: ${field} must be`) &&
        e.message.endsWith(`got ${value}`) && !e.message.includes("NaN"),
    );
  refused({ ...SD, beta_start: -0.001 }, "beta_start", "-0.001");
  refused({ ...SD, beta_schedule: "linear", beta_start: 0 }, "beta_start", "0");
  refused({ ...SD, beta_end: 1.2 }, "beta_end", "1.2");
  refused({ ...SD, beta_end: "0.012" }, "beta_end", '"0.012"');
  refused({ trained_betas: [0.1, -0.2, 0.5] }, "trained_betas[1]", "-0.2");
  refused({ ...SD, num_train_timesteps: "1000" }, "num_train_timesteps", '"1000"');
  // the cosine schedule ignores beta_start and beta_end, as diffusers does
  const cosine = NoiseSchedule.fromConfig({ beta_schedule: "squaredcos_cap_v2", beta_start: -1 });
  assert.equal(cosine.betas[999], 0.999);
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

// Inference timesteps as diffusers' DDIMScheduler.set_timesteps picks them; the 10-step rows are
// Table 2 of Lin et al. (2024), "Common Diffusion Noise Schedules and Sample Steps are Flawed"
// (0-based, as diffusers indexes them).
Deno.test("timestep_spacing and steps_offset: diffusers' DDIM timesteps (Lin et al. 2024, Table 2)", () => {
  const steps = (
    config: Record<string, unknown>,
    n: number,
  ) => [...NoiseSchedule.fromConfig({ ...SD, ...config }).inferenceTimesteps(n)];
  const range = (from: number, step: number) =>
    Array.from({ length: 10 }, (_, k) => from + k * step);
  assert.deepEqual(steps({}, 10), range(0, 100), "leading, DDIMScheduler's default offset 0");
  assert.deepEqual(steps({ steps_offset: 1 }, 10), range(1, 100), "leading + SD's offset 1");
  assert.deepEqual(steps({ timestep_spacing: "trailing" }, 10), range(99, 100));
  assert.deepEqual(steps({ timestep_spacing: "linspace" }, 10), range(0, 111));
  // numpy rounds halves to even: linspace(0, 999, 7) = 0, 166.5, 333, 499.5, 666, 832.5, 999
  assert.deepEqual(steps({ timestep_spacing: "linspace" }, 7), [0, 166, 333, 500, 666, 832, 999]);
  // round(arange(1000, 0, −1000/7)) − 1, ascending
  assert.deepEqual(steps({ timestep_spacing: "trailing" }, 7), [142, 285, 428, 570, 713, 856, 999]);
  assert.throws(
    () => steps({ steps_offset: 1 }, 1000),
    /reach timestep 1000, past the 1000 trained ones/,
  );
  assert.throws(
    () => NoiseSchedule.fromConfig({ ...SD, timestep_spacing: "karras" }),
    ModelLoadError,
  );
  assert.throws(
    () => NoiseSchedule.fromConfig({ ...SD, steps_offset: -1 }),
    /steps_offset must be/,
  );
});

Deno.test("rescale_betas_zero_snr: Lin et al.'s Algorithm 1, terminal ᾱ 2⁻²⁴ as diffusers' Euler", () => {
  const base = NoiseSchedule.fromConfig(SD);
  // SD's terminal signal is not zero: ᾱ₉₉₉ ≈ 0.0047 (Lin et al. §3.1)
  assert.ok(Math.abs(base.alphasCumprod[999] - 0.0047) < 1e-4, `${base.alphasCumprod[999]}`);
  const zero = NoiseSchedule.fromConfig({ ...SD, rescale_betas_zero_snr: true });
  const [s0, sT] = [Math.sqrt(base.alphasCumprod[0]), Math.sqrt(base.alphasCumprod[999])];
  for (const t of [0, 1, 214, 500, 998]) {
    const expected = (Math.sqrt(base.alphasCumprod[t]) - sT) * s0 / (s0 - sT);
    assert.ok(Math.abs(Math.sqrt(zero.alphasCumprod[t]) - expected) < 1e-12, `t = ${t}`);
  }
  assert.ok(Math.abs(zero.alphasCumprod[999] - 2 ** -24) < 1e-20);
  assert.ok(Math.abs(zero.range.min - Math.log(2 ** -24 / (1 - 2 ** -24))) < 1e-9); // −16.64
  assert.equal(zero.range.max, base.range.max);
  assert.throws(
    () => NoiseSchedule.fromConfig({ ...SD, rescale_betas_zero_snr: "yes" as unknown as boolean }),
    /must be true or false/,
  );
});

Deno.test("an export's scheduler config reaches the loaded model and its DDIM ladder", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  const { ddimLadder } = await import("../src/generation/ddim.ts");
  const dir = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-r", "fixtures/models/sd-vpred/.", dir] }).output();
  const path = `${dir}/scheduler/scheduler_config.json`;
  const config = JSON.parse(await Deno.readTextFile(path));
  await Deno.writeTextFile(
    path,
    JSON.stringify({ ...config, rescale_betas_zero_snr: true, timestep_spacing: "trailing" }),
  );
  const model = await loadModel(dir, { device: "cpu" });
  try {
    assert.ok(Math.abs(model.logSnrRange!.min + 16.6355) < 1e-3, `${model.logSnrRange!.min}`);
    assert.deepEqual(
      [...ddimLadder(model, 10).timesteps!],
      Array.from({ length: 10 }, (_, k) => 99 + 100 * k),
    );
  } finally {
    await model.dispose();
  }
});
