/**
 * SDXL, SD 3 and FLUX.1 end to end against exact truth (issue 24, part 4 "Exact"): the
 * exact-Gaussian family fixtures (tools/build_family_fixtures.py) have each family's optimum-onnx
 * graph names, dtypes and ranks, and a network that is the exact denoiser of latent data
 * x ~ N(μ(condition), v·I), where μ depends on every piece of conditioning the family's pipeline
 * builds (both CLIPs' penultimate states, the pooled vectors, T5, time_ids, img_ids, guidance).
 * Tokenizers → text encoders → the pipeline's conditioning → VAE (scaling, shift) → time
 * (a trained timestep, 1000·t or t) → packing → network → ε̂ → estimator, against closed forms over
 * the model's sampled α range, with K = ½∫ s(1−s)/(s·v+1−s)² dα and
 * L = ½∫ [s²v²/(s·v+1−s)² − s] dα (s = σ(α), snapped to SDXL's trained timesteps):
 *   orthogonal  iᵒ(x; y | c) = K·‖μ_y − μ_c‖²,  its pixel map K·Σ_c (μ_y − μ_c)²
 *   standard    E_ε i(x; y | c) = K·(‖x − μ_c‖² − ‖x − μ_y‖²)
 *   likelihood  −log p(x | y) = (d/2)·log(2πe) + d·L + K·‖x − μ_y‖²
 * A flow model's ε̂ = x_t + (1 − t)·v̂ of the exact velocity is the exact VP denoiser, so the same
 * forms hold for SD 3 and FLUX.1.
 *
 * Allowance beyond 3 SE: 10⁻⁵ of the truth + 10⁻⁶ nats. The μ in truth.json are the graphs' own
 * float32 values (8 significant digits, μ ≈ 1), differenced to Δμ ≈ 0.1: ~10⁻⁶ relative in ‖Δμ‖²;
 * Simpson's rule on 200,000 steps adds less. The pixel map of the exact denoiser is noise-free in
 * shape (Δε̂ = b(α)·Δμ, so the map is K̂·Σ_c Δμ²): each pixel's share of the total must equal the
 * closed form's within MAP_TOLERANCE of the largest share, the float32 rounding of ε̂ (2⁻²⁴ per
 * value) amplified where Δε̂ is small (measured: ~2·10⁻⁵).
 *
 * The sensitivity table of each truth.json says what the estimators converge to when a backend
 * gets a convention wrong (the last CLIP layer instead of the penultimate, "" instead of zeros,
 * time_ids, the time unit, v taken as ε, the VAE shift, packing, ids, guidance); the last test
 * checks that each lands at least FAR times the exactness bound away from the estimate, so the
 * exactness tests above fail on it, and, where a loader option asks for that convention on
 * purpose (SDXL's `unconditional: "encoded"`, FLUX's `guidance`), that the backend then converges
 * to the table's value.
 */
import assert from "node:assert/strict";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import type { LoadModelOptions } from "../src/models/onnx/load-model.ts";
import type { Query } from "../src/query/query.ts";
import { loadTokenizer } from "../src/models/sd/tokenizer.ts";
import { loadT5Tokenizer } from "../src/models/sd/t5-tokenizer.ts";
import {
  FAMILY_FIXTURES,
  type FamilyTruth,
  fixtureDir,
  informationKernel,
  informationMap,
  likelihoodKernel,
  readFamilyTruth,
  type SensitivityRow,
  squaredDistance,
} from "./onnx-truth.ts";

/** how far (in exactness bounds) a wrong convention's value must land from the estimate */
const FAR = 5;
/** a pixel's share of the map may differ from the closed form's by this much of the largest share */
const MAP_TOLERANCE = 1e-4;

const normalise = (prompt: string) => prompt.trim().split(/\s+/).filter(Boolean).join(" ");

interface Kernels {
  /** K over the model's range (see the module doc) */
  readonly k: number;
  /** L over the model's range */
  readonly l: number;
}

function kernels(model: OnnxModel, truth: FamilyTruth): Kernels {
  const { min, max } = model.logSnrRange;
  const snap = (a: number) => model.snapLogSnr?.(a) ?? a;
  return {
    k: informationKernel(truth.variance, min, max, snap),
    l: likelihoodKernel(truth.variance, min, max, snap),
  };
}

function mean(truth: FamilyTruth, prompt: string): number[] {
  const entry = truth.prompts[normalise(prompt)];
  if (!entry) throw new Error(`truth.json has no prompt "${normalise(prompt)}"`);
  return entry.mu;
}

/** the exactness bound of an estimate against a closed form */
function bound(estimate: { se: number }, truth: number): number {
  return 3 * estimate.se + 1e-5 * Math.abs(truth) + 1e-6;
}

function assertExact(label: string, estimate: { nats: number; se: number }, truth: number) {
  const allowed = bound(estimate, truth);
  assert.ok(
    Math.abs(estimate.nats - truth) <= allowed,
    `${label}: estimate ${estimate.nats.toFixed(5)} ± ${estimate.se.toFixed(5)} vs closed form ` +
      `${truth.toFixed(5)} (allowed ${allowed.toFixed(5)})`,
  );
}

function orthogonal(kern: Kernels, truth: FamilyTruth, prompt: string, context: string): number {
  return kern.k * squaredDistance(mean(truth, prompt), mean(truth, context));
}

function likelihood(kern: Kernels, truth: FamilyTruth, x: ArrayLike<number>, prompt: string) {
  const d = x.length;
  return 0.5 * d * Math.log(2 * Math.PI * Math.E) + d * kern.l +
    kern.k * squaredDistance(x, mean(truth, prompt));
}

/** each pixel's share of a map's total */
function shares(map: ArrayLike<number>): number[] {
  let total = 0;
  for (let p = 0; p < map.length; p++) total += map[p];
  return Array.from(map, (value) => value / total);
}

/** max |share difference| of two maps relative to the first map's largest share */
function shapeDifference(reference: ArrayLike<number>, other: ArrayLike<number>): number {
  const a = shares(reference), b = shares(other);
  return Math.max(...a.map((value, p) => Math.abs(value - b[p]))) / Math.max(...a);
}

async function withFixture(
  name: string,
  body: (model: OnnxModel, truth: FamilyTruth, kern: Kernels, image: string) => Promise<void>,
  options: LoadModelOptions = {},
) {
  const model = await loadModel(fixtureDir(name), { device: "cpu", ...options });
  try {
    const truth = await readFamilyTruth(name);
    assert.deepEqual(model.shape, truth.shape);
    await body(model, truth, kernels(model, truth), `fixtures/images/${truth.image}`);
  } finally {
    await model.dispose();
  }
}

const TOKENIZER_OF: Record<string, string> = {
  text_encoder: "tokenizer",
  text_encoder_2: "tokenizer_2",
  text_encoder_3: "tokenizer_3",
};

for (const name of FAMILY_FIXTURES) {
  Deno.test(`${name}: prepare gives (VAE mean − shift)·scaling; each tokenizer gives transformers' ids`, async () => {
    await withFixture(name, async (model, truth, _kern, image) => {
      const x = await model.prepare(image);
      assert.equal(x.length, truth.image_latent.length);
      for (let j = 0; j < x.length; j++) {
        assert.ok(Math.abs(x[j] - truth.image_latent[j]) < 1e-5, `latent value ${j}`);
      }
      for (const [prompt, entry] of Object.entries(truth.prompts)) {
        for (const [encoder, ids] of Object.entries(entry.input_ids)) {
          const dir = `${fixtureDir(name)}/${TOKENIZER_OF[encoder]}`;
          const isT5 = await Deno.stat(`${dir}/tokenizer.json`).then(() => true, () => false);
          const tokenizer = isT5
            ? await loadT5Tokenizer(dir, ids.length)
            : await loadTokenizer(dir);
          assert.deepEqual(Array.from(tokenizer.inputIds(prompt)), ids, `${encoder}: "${prompt}"`);
        }
      }
    });
  });

  Deno.test(`${name}: total, about and perToken (orthogonal) equal K·‖μ_y − μ_c‖² within 3 SE`, async () => {
    await withFixture(name, async (model, truth, kern, image) => {
      const prompt = truth.main_prompt;
      const query = model.info(image).given(prompt).samples(256).seed(5);
      const result = await query.perToken();
      assertExact(`total "${prompt}"`, result.total, orthogonal(kern, truth, prompt, ""));
      assert.equal(result.tokens.length, prompt.split(" ").length);
      for (const token of result.tokens) {
        assertExact(
          `"${token.word}" in "${prompt}"`,
          token.estimate,
          orthogonal(kern, truth, prompt, token.context),
        );
      }
      const word = truth.pid_words[1];
      const context = prompt.split(" ").filter((w) => w !== word).join(" ");
      assertExact(
        `about("${word}")`,
        await query.about(word),
        orthogonal(kern, truth, prompt, context),
      );
    });
  });

  Deno.test(`${name}: perPixel is within 3 SE, and its map has exactly the closed form's shape`, async () => {
    await withFixture(name, async (model, truth, kern, image) => {
      const prompt = truth.main_prompt;
      const result = await model.info(image).given(prompt).samples(128).seed(6).perPixel();
      const total = orthogonal(kern, truth, prompt, "");
      assertExact("perPixel total", result.estimate, total);
      const [, h, w] = truth.shape;
      assert.deepEqual([result.map.height, result.map.width], [h, w]);
      const expected = informationMap(kern.k, mean(truth, prompt), mean(truth, ""), truth.shape);
      const difference = shapeDifference(expected, result.map.data);
      assert.ok(difference < MAP_TOLERANCE, `map shape differs by ${difference}`);
    });
  });

  Deno.test(`${name}: the standard estimator and nll equal the log-density closed forms within 3 SE`, async () => {
    await withFixture(name, async (model, truth, kern, image) => {
      const prompt = truth.main_prompt;
      const query = model.info(image).given(prompt);
      const x = await query.data();
      const standard = kern.k *
        (squaredDistance(x, mean(truth, "")) - squaredDistance(x, mean(truth, prompt)));
      assertExact(
        "standard total",
        await query.estimator("standard").samples(256).seed(7).total(),
        standard,
      );
      assertExact(
        "nll",
        await query.samples(512).seed(8).nll(),
        likelihood(kern, truth, x, prompt),
      );
    });
  });

  Deno.test(`${name}: pid's informations, plain and conditional, within 3 SE; R = min(I_A, I_B)`, async () => {
    await withFixture(name, async (model, truth, kern, image) => {
      const prompt = truth.main_prompt;
      const [a, b] = truth.pid_words;
      const result = await model.info(image).given(prompt).samples(128).seed(9).pid(a, b);
      const without = (...words: string[]) =>
        prompt.split(" ").filter((w) => !words.includes(w)).join(" ");
      const forms = {
        plain: { context: "", a: a, b: b, both: `${a} ${b}` },
        conditional: { context: without(a, b), a: without(b), b: without(a), both: prompt },
      };
      for (const [form, p] of Object.entries(forms)) {
        const terms = result[form as keyof typeof forms];
        const exact = {
          informationA: orthogonal(kern, truth, p.a, p.context),
          informationB: orthogonal(kern, truth, p.b, p.context),
          informationBoth: orthogonal(kern, truth, p.both, p.context),
        };
        for (const [term, value] of Object.entries(exact)) {
          assertExact(`${form} ${term}`, terms[term as keyof typeof exact].estimate, value);
        }
        const smaller = exact.informationA < exact.informationB ? "informationA" : "informationB";
        assert.equal(terms.redundancy.estimate.nats, terms[smaller].estimate.nats);
      }
    });
  });

  Deno.test(`${name}: each wrong convention of the sensitivity table lands far outside the exactness bound`, async () => {
    await withFixture(name, async (model, truth, kern, image) => {
      // the table was integrated over the model's range: the same range, or the numbers are not its
      const { min, max } = model.logSnrRange;
      assert.ok(
        Math.abs(min - truth.log_snr_range.min) < 1e-9 &&
          Math.abs(max - truth.log_snr_range.max) < 1e-9,
        `the model samples α ∈ [${min}, ${max}]; truth.json's table is over ` +
          `[${truth.log_snr_range.min}, ${truth.log_snr_range.max}]: rebuild it`,
      );
      assert.ok(truth.sensitivity.length >= 3, "at least three wrong conventions per family");
      const query = model.info(image).given(truth.main_prompt);
      const x = await query.data();
      for (const row of truth.sensitivity) await checkRow(row, { query, truth, kern, x });
    });
  });
}

interface RowContext {
  readonly query: Query;
  readonly truth: FamilyTruth;
  readonly kern: Kernels;
  readonly x: Float32Array;
}

/**
 * One row: the table's truth is the closed form of truth.json's means, the estimate reaches it,
 * and the wrong convention's value lies at least FAR exactness bounds from the estimate (for a
 * map: its shape at least FAR map tolerances from the estimated map's).
 */
async function checkRow(row: SensitivityRow, { query, truth, kern, x }: RowContext) {
  const label = `${truth.family} ${row.convention} (${row.wrong})`;
  const closed = row.quantity === "nll"
    ? likelihood(kern, truth, x, row.prompt)
    : orthogonal(kern, truth, row.prompt, row.against ?? "");
  assert.ok(
    Math.abs(closed - row.truth) <= 1e-4 * Math.abs(row.truth),
    `${label}: table's truth ${row.truth} vs the closed form of its means ${closed}`,
  );
  if (row.quantity === "map") {
    const map = (await query.samples(128).seed(10).perPixel()).map.data;
    assert.ok(shapeDifference(row.truth_map!, map) < MAP_TOLERANCE, `${label}: the true map`);
    const apart = shapeDifference(row.truth_map!, row.converges_to_map!);
    assert.ok(Math.abs(apart - row.map_shape_difference!) < 1e-6);
    assert.ok(
      shapeDifference(row.converges_to_map!, map) > FAR * MAP_TOLERANCE &&
        apart > FAR * MAP_TOLERANCE,
      `${label}: the wrong map's shape is only ${apart} from the truth's`,
    );
    return;
  }
  const estimate = row.quantity === "nll"
    ? await query.samples(512).seed(8).nll()
    : await query.samples(256).seed(5).total();
  assertExact(label, estimate, row.truth);
  const gap = Math.abs(row.converges_to - estimate.nats) / bound(estimate, row.truth);
  assert.ok(
    gap > FAR,
    `${label}: converges to ${row.converges_to.toFixed(4)}, only ${gap.toFixed(1)} exactness ` +
      `bounds from the estimate ${estimate.nats.toFixed(4)} ± ${estimate.se.toFixed(4)}`,
  );
}

Deno.test('exact-sdxl: unconditional "encoded" (on request) converges to the table\'s "" instead of zeros', async () => {
  await withFixture("exact-sdxl", async (model, truth, kern, image) => {
    const row = truth.sensitivity.find((r) => r.convention === "empty-prompt-encoded")!;
    const estimate = await model.info(image).given(truth.main_prompt).samples(256).seed(5).total();
    const encoded = kern.k *
      squaredDistance(mean(truth, truth.main_prompt), truth.prompts[""].mu_encoded!);
    assertExact('total against the encoded ""', estimate, encoded);
    assert.ok(Math.abs(encoded - row.converges_to) <= 1e-4 * row.converges_to);
  }, { unconditional: "encoded" });
});

Deno.test("exact-flux: guidance 3.5 (on request) converges to the table's guidance row", async () => {
  await withFixture("exact-flux", async (model, truth, _kern, image) => {
    const row = truth.sensitivity.find((r) => r.convention === "guidance-3.5")!;
    const estimate = await model.info(image).given(truth.main_prompt).samples(256).seed(5).total();
    assertExact("total at guidance 3.5", estimate, row.converges_to);
  }, { guidance: 3.5 });
});
