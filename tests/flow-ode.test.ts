/**
 * The flow-matching ODE (issue 24, part 3): the levels are diffusers' (fixtures/flow/schedules.json,
 * tools/make_flow_schedule_fixture.py), Euler and Heun converge to the exact flow of a Gaussian at
 * orders 1 and 2, inversion then regeneration returns the data, and model.generate, model.invert
 * and interventionStudy run it on a flow model.
 */
import assert from "node:assert/strict";
import {
  flowBatch,
  flowGenerate,
  flowInvert,
  type FlowSolver,
  flowTimes,
} from "../src/generation/flow-ode.ts";
import { type FlowConvention, flowConvention, flowSchedulerConfig } from "../src/models/flow.ts";
import { flowOracle } from "../src/models/flow-oracle.ts";
import { mixtureDenoiser } from "../src/models/mixture.ts";
import { initialNoise } from "../src/generation/ddim.ts";
import { createModel } from "../src/query/model.ts";
import { interventionStudy } from "../src/studies/intervention.ts";
import { InvalidArgumentError } from "../src/errors.ts";

interface ScheduleCase {
  readonly pipeline: "sd3" | "sd3-heun" | "flux";
  readonly scheduler: Record<string, unknown>;
  readonly steps: number;
  readonly imageSeqLen?: number;
  readonly sigmas: number[];
}

const SCHEDULES = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/flow/schedules.json", import.meta.url)),
) as { diffusers: string; cases: ScheduleCase[] };

/** A one-component oracle N(μ, σ²·I): its flow is exact and affine. */
const MEAN = [1.5, -0.5, 0.25], VARIANCE = 0.3;
function gaussian(convention?: FlowConvention) {
  return flowOracle({
    shape: [1, 1, 3],
    components: [{ words: ["a"], mean: MEAN, variance: VARIANCE }],
    ...(convention ? { convention } : {}),
  });
}

/**
 * The exact flow map of N(μ, σ²) from time t to 0: (x_t − (1−t)μ)/sd(t) is constant along the
 * ODE's paths, sd(t) = √((1−t)²σ² + t²).
 */
function exactData(xt: Float32Array, t: number): number[] {
  const sd = Math.sqrt((1 - t) ** 2 * VARIANCE + t * t);
  return MEAN.map((m, j) => m + Math.sqrt(VARIANCE) * (xt[j] - (1 - t) * m) / sd);
}

Deno.test(`flowTimes are the sigmas diffusers ${SCHEDULES.diffusers}'s SD3 and FLUX pipelines step through`, () => {
  for (const c of SCHEDULES.cases) {
    const scheduler = flowSchedulerConfig(c.scheduler);
    const convention = flowConvention(scheduler, {
      ...(c.imageSeqLen ? { imageSeqLen: c.imageSeqLen } : {}),
      ...(c.pipeline === "flux" ? { lastSigma: "1/steps" } : {}),
    });
    const times = flowTimes(gaussian(convention), c.steps);
    assert.equal(times.length, c.sigmas.length, `${c.pipeline} ${c.steps}`);
    // diffusers starts at t = 1 (α = −∞); infodiff at the top of the trained range
    assert.equal(c.sigmas[0], 1);
    assert.equal(times[0], convention.tRange[1]);
    for (let k = 1; k < times.length; k++) {
      assert.ok(
        Math.abs(times[k] - c.sigmas[k]) < 2e-7,
        `${c.pipeline}, ${c.steps} steps, level ${k}: ${times[k]} vs diffusers ${c.sigmas[k]}`,
      );
    }
  }
  // FLUX's levels move with the image size: 4,096 tokens shift further towards noise than 1,024
  const flux = SCHEDULES.cases.filter((c) => c.pipeline === "flux" && c.scheduler.shift === 3);
  const at = (seq: number) => flux.find((c) => c.imageSeqLen === seq && c.steps === 28)!.sigmas;
  assert.ok(at(4096)[14] > at(1024)[14]);
});

Deno.test("flowTimes: levels above the trained range start at its top and merge; bad input refused", () => {
  const convention = flowConvention({ shift: 3, useDynamicShifting: false });
  const times = flowTimes(gaussian(convention), 1000);
  assert.equal(times[0], convention.tRange[1]);
  assert.ok(times.every((t, k) => k === 0 || t < times[k - 1]), "strictly decreasing");
  assert.ok(times.length < 1000, "levels above t_max merged into one");
  assert.throws(() => flowTimes(gaussian(convention), 1001), /exceeds the 1000 trained timesteps/);
  assert.throws(() => flowTimes(gaussian(convention), 0), InvalidArgumentError);
  const plain = mixtureDenoiser({
    shape: [1, 1, 1],
    components: [{ words: [], mean: [0], variance: 1 }],
  });
  assert.throws(() => flowTimes(plain, 10), /not a flow-matching model/);
});

Deno.test("Euler and Heun converge to the exact flow of a Gaussian at orders 1 and 2", async () => {
  // SD3's schedule ends at shift(shift(1/1000)) whatever the steps (0.0089 at shift 3, from which
  // the last Euler step's error stays), so the orders show on a shift-1 schedule (last level 0.001)
  // and on FLUX's, whose last level 1/steps shrinks with the step
  const conventions = [
    flowConvention({ shift: 1, useDynamicShifting: false }),
    flowConvention({ shift: 3, useDynamicShifting: false }, { lastSigma: "1/steps" }),
  ];
  for (const convention of conventions) {
    const shift = convention.trainingLaw.shift;
    const model = gaussian(convention);
    const z = Float32Array.of(0.8, -1.1, 0.3);
    const top = flowTimes(model, 16)[0];
    const s = Math.hypot(1 - top, top);
    const exact = exactData(Float32Array.from(z, (v) => s * v), top);
    for (const [solver, order] of [["euler", 1], ["heun", 2]] as const) {
      const errors: number[] = [];
      for (const steps of [16, 32, 64, 128]) {
        const [x] = await flowBatch(model, [{ prompt: "a", start: z }], "generate", {
          steps,
          solver,
        });
        errors.push(Math.max(...exact.map((e, j) => Math.abs(x[j] - e))));
      }
      // each halving of the step divides the error by 2^order
      for (let i = 1; i < errors.length; i++) {
        const rate = Math.log2(errors[i - 1] / errors[i]);
        assert.ok(
          Math.abs(rate - order) < 0.25,
          `${solver}, shift ${shift}: errors ${
            errors.map((e) => e.toExponential(2))
          }, rate ${rate}`,
        );
      }
    }
  }
});

Deno.test("inversion then regeneration returns the data; the inverted state is the exact flow's", async () => {
  const model = gaussian(flowConvention({ shift: 3, useDynamicShifting: false }));
  const x = Float32Array.of(1.2, 0.1, -0.4);
  for (const [solver, steps, tolerance] of [["euler", 200, 0.02], ["heun", 50, 1e-3]] as const) {
    const [z] = await flowBatch(model, [{ prompt: "a", start: x }], "invert", { steps, solver });
    // the exact flow maps x to the state at t_max whose exact image is x again
    const top = flowTimes(model, steps)[0], s = Math.hypot(1 - top, top);
    const back = exactData(Float32Array.from(z, (v) => s * v), top);
    back.forEach((v, j) => assert.ok(Math.abs(v - x[j]) < tolerance, `${solver} exact ${j}: ${v}`));
    const [regenerated] = await flowBatch(model, [{ prompt: "a", start: z }], "generate", {
      steps,
      solver,
    });
    regenerated.forEach((v, j) =>
      assert.ok(Math.abs(v - x[j]) < tolerance, `${solver} ${j}: ${v}`)
    );
  }
  // the round trip's error shrinks with the step at Heun's order
  const roundTrip = async (steps: number) => {
    const options = { steps, solver: "heun" as FlowSolver };
    const [z] = await flowBatch(model, [{ prompt: "a", start: x }], "invert", options);
    const [back] = await flowBatch(model, [{ prompt: "a", start: z }], "generate", options);
    return Math.max(...back.map((v, j) => Math.abs(v - x[j])));
  };
  const [coarse, fine] = [await roundTrip(25), await roundTrip(100)];
  assert.ok(coarse / fine > 10, `round trip ${coarse} at 25 steps, ${fine} at 100`);
});

Deno.test("model.generate and model.invert run the flow ODE on a flow model; a solver elsewhere is refused", async () => {
  const oracle = gaussian();
  const model = createModel(oracle);
  const x = await model.generate("a", { seed: 3, steps: 20, solver: "heun" });
  const [direct] = await flowBatch(
    oracle,
    [{ prompt: "a", start: initialNoise(oracle, 3) }],
    "generate",
    {
      steps: 20,
      solver: "heun",
    },
  );
  assert.deepEqual(x, direct);
  assert.deepEqual(x, await flowGenerate(oracle, "a", { seed: 3, steps: 20, solver: "heun" }));
  // default: Euler, 28 steps, as the pipelines
  const [euler28] = await flowBatch(
    oracle,
    [{ prompt: "a", start: initialNoise(oracle, 0) }],
    "generate",
    {
      steps: 28,
      solver: "euler",
    },
  );
  assert.deepEqual(await model.generate("a"), euler28);
  const z = await model.invert(x, "a", { steps: 20, solver: "heun" });
  assert.deepEqual(z, await flowInvert(oracle, x, "a", { steps: 20, solver: "heun" }));
  await assert.rejects(model.generate("a", { solver: "rk4" as FlowSolver }), /unknown flow solver/);
  const plain = createModel(
    mixtureDenoiser({
      shape: [1, 1, 3],
      components: [{ words: ["a"], mean: MEAN, variance: 0.3 }],
    }),
  );
  await assert.rejects(
    (async () => await plain.generate("a", { solver: "heun" }))(),
    /is not a flow model \(it runs DDIM\)/,
  );
  await assert.rejects(flowInvert(plain, x, "a"), /not a flow-matching model/);
});

Deno.test("interventionStudy runs on a flow model: its flow ODE by default, recorded in the header", async () => {
  const oracle = flowOracle({
    shape: [1, 2, 2],
    components: [
      { words: ["red", "circle"], mean: [1, 0.5, 0, 0], variance: 0.3 },
      { words: ["blue", "circle"], mean: [0, 0, 1, 0.5], variance: 0.3 },
    ],
  });
  const items = ["red", "circle"].map((word, i) => ({
    image: oracle.sample("red circle", { seed: i + 1 }),
    caption: "a red circle",
    word,
  }));
  const dir = await Deno.makeTempDir();
  try {
    const results = `${dir}/r.jsonl`;
    const result = await interventionStudy(oracle, items, { steps: 10, samples: 32, results });
    assert.equal(result.items.length, 2);
    // removing "red" leaves "circle", which both components carry: the regeneration changes
    const red = result.items.find((r) => r.word === "red")!;
    assert.ok(red.change > 0);
    const header = JSON.parse((await Deno.readTextFile(results)).split("\n")[0]);
    assert.equal(header.settings.sampler, "flow-heun");
    // no profile: the study's first row calibrates from the logistic (a flow model's prior), the rest draw
    // from the profile fitted on it (issue 26's self-calibration); both are in the header
    assert.equal(header.settings.calibration.prior.proposal, "logistic");
    assert.equal(header.settings.proposal.kind, "fitted");
    assert.ok(
      (await interventionStudy(oracle, items, { steps: 10, samples: 8, sampler: "flow-euler" }))
        .items.length === 2,
    );
    const plain = mixtureDenoiser({
      shape: [1, 2, 2],
      components: [{ words: ["red"], mean: [1, 0, 0, 0], variance: 0.3 }],
    });
    await assert.rejects(
      interventionStudy(plain, [{ image: plain.sample("red"), caption: "red", word: "red" }], {
        sampler: "flow-heun",
        samples: 4,
      }),
      /not a flow-matching model/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
