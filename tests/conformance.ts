// The backend contract as one suite (like hono's router/common.case.test.ts): every Denoiser —
// the oracles, every ONNX fixture, any future backend — runs `denoiserConformance` and must pass
// all of it. A backend is described by a factory that makes a fresh denoiser per case.
import assert from "node:assert/strict";
import {
  InfoDiffError,
  InvalidArgumentError,
  InvalidImageError,
  ModelRuntimeError,
} from "../src/errors.ts";
import { type Denoiser, shapeSize } from "../src/models/denoiser.ts";
import { flowLogSnrRange } from "../src/models/flow.ts";
import { Random } from "../src/numerics/random.ts";
import { createModel } from "../src/query/model.ts";
import { promptWords } from "../src/text/prompt.ts";

/** How the suite gets and uses a backend. */
export interface ConformanceSubject {
  /** a fresh denoiser (disposed by the suite) */
  readonly create: () => Promise<Denoiser>;
  /** a prompt the backend can condition on */
  readonly prompt: string;
  /** largest |difference| between an item evaluated alone and in a mixed batch (default 1e-5) */
  readonly batchTolerance?: number;
  /** skip every case (a device this machine does not have); the caller says why */
  readonly ignore?: boolean;
}

const sigmoid = (a: number) => 1 / (1 + Math.exp(-a));

/** Registers the conformance cases of one backend under `name`. */
export function denoiserConformance(name: string, subject: ConformanceSubject): void {
  const run = (title: string, body: (d: Denoiser) => Promise<void>) =>
    Deno.test({
      name: `conformance ${name}: ${title}`,
      ignore: subject.ignore ?? false,
      fn: async () => {
        const denoiser = await subject.create();
        try {
          await body(denoiser);
        } finally {
          await denoiser.dispose();
        }
      },
    });

  run("metadata is well formed", (d) => {
    assert.equal(typeof d.name, "string");
    assert.ok(d.name.length > 0);
    assert.equal(d.shape.length, 3);
    assert.ok(d.shape.every((n) => Number.isInteger(n) && n > 0), `shape ${d.shape}`);
    assert.ok(Number.isInteger(d.batchSize) && d.batchSize > 0, `batchSize ${d.batchSize}`);
    assert.equal(typeof d.sharedLogSnr, "boolean");
    if (d.logSnrRange) assert.ok(d.logSnrRange.min < d.logSnrRange.max);
    if (d.schedule) assert.equal(d.schedule.logSnr.length, d.schedule.length);
    // a flow model's trained range is its flow convention's, which never reaches t = 0 or 1
    if (d.flow) {
      const range = flowLogSnrRange(d.flow);
      assert.ok(d.logSnrRange, "a flow model states its trained log-SNR range");
      assert.ok(
        Math.abs(d.logSnrRange.min - range.min) < 1e-9,
        `${d.logSnrRange.min} vs ${range.min}`,
      );
      assert.ok(
        Math.abs(d.logSnrRange.max - range.max) < 1e-9,
        `${d.logSnrRange.max} vs ${range.max}`,
      );
    }
    return Promise.resolve();
  });

  run("predictNoise returns size·d finite values for batches of 1, 3 and batchSize", async (d) => {
    const condition = await d.encode(subject.prompt);
    for (const size of new Set([1, 3, d.batchSize])) {
      const batch = noisyBatch(d, size, [0.5], condition);
      const out = await d.predictNoise(batch);
      assert.ok(out instanceof Float32Array);
      assert.equal(out.length, size * shapeSize(d.shape), `batch of ${size}`);
      assert.ok(out.every(Number.isFinite), `batch of ${size}: finite values`);
    }
  });

  run("a mixed-α batch gives each item what it gets alone", async (d) => {
    const condition = await d.encode(subject.prompt);
    const range = d.logSnrRange ?? { min: -5, max: 7 };
    const alphas = [range.min + 1, 0.3, range.max - 1].map((a) => d.snapLogSnr?.(a) ?? a);
    const batch = noisyBatch(d, 3, alphas, condition);
    const together = await d.predictNoise(batch);
    const size = shapeSize(d.shape);
    for (let i = 0; i < 3; i++) {
      const alone = await d.predictNoise({
        noisy: batch.noisy.slice(i * size, (i + 1) * size),
        logSnr: batch.logSnr.slice(i, i + 1),
        conditions: [condition],
      });
      const worst = maxDifference(alone, together.subarray(i * size, (i + 1) * size));
      assert.ok(
        worst <= (subject.batchTolerance ?? 1e-5),
        `item ${i} (α ${alphas[i]}): differs by ${worst} in the mixed batch`,
      );
    }
  });

  run("snapLogSnr is idempotent and stays in the trained range", (d) => {
    if (!d.snapLogSnr) return Promise.resolve();
    const range = d.logSnrRange ?? { min: -20, max: 20 };
    for (const a of [range.min - 3, range.min, -1.234, 0, 2.5, range.max, range.max + 3]) {
      const once = d.snapLogSnr(a);
      assert.equal(d.snapLogSnr(once), once, `snap(snap(${a}))`);
      if (d.logSnrRange) {
        assert.ok(once >= range.min - 1e-9 && once <= range.max + 1e-9, `snap(${a}) = ${once}`);
      }
    }
    return Promise.resolve();
  });

  run("encode caches: the same prompt gives the same condition", async (d) => {
    const first = await d.encode(subject.prompt);
    const second = await d.encode(subject.prompt);
    assert.equal(first.prompt, subject.prompt);
    assert.equal(second, first);
  });

  run("a prompt that is not a string is a typed error", async (d) => {
    await assert.rejects(
      async () => await d.encode(42 as unknown as string),
      (e: unknown) => e instanceof InfoDiffError,
    );
  });

  run(
    "encoderTokens, where present: the prompt fits, and a long one is cut with its words named",
    (d) => {
      if (!d.encoderTokens) return Promise.resolve();
      const fits = d.encoderTokens(subject.prompt);
      assert.ok(fits.length > 0, "one entry per text encoder");
      for (const r of fits) assert.ok(r.kept === r.total && r.cutWords.length === 0, r.encoder);
      const long = Array(200).fill(subject.prompt).join(" ");
      const words = promptWords(long);
      const reads = d.encoderTokens(long);
      assert.deepEqual(reads.map((r) => r.encoder), fits.map((r) => r.encoder));
      for (const r of reads) {
        assert.ok(r.kept < r.contextLength && r.kept < r.total, `${r.encoder}: cut`);
        const indices = r.cutWords.map((w) => w.index);
        assert.equal(indices.at(-1), words.length - 1, `${r.encoder}: the last word is cut`);
        assert.ok(indices.every((index, k) => k === 0 || index === indices[k - 1] + 1), "a tail");
        assert.ok(r.cutWords.every((w) => w.word === words[w.index].word), "the prompt's words");
        assert.ok(r.cutWords.slice(1).every((w) => !w.partly), "only the first may be partly cut");
      }
      if (d.truncatedWords && reads.length === 1) {
        const whole = reads[0].cutWords.filter((w) => !w.partly).map((w) => w.index);
        assert.deepEqual([...d.truncatedWords(long)], whole, "truncatedWords agrees");
      }
      return Promise.resolve();
    },
  );

  run("prepare validates: wrong size and non-finite data are InvalidImageErrors", async (d) => {
    const size = shapeSize(d.shape);
    const good = new Float32Array(size).fill(0.1);
    const prepared = await d.prepare(good);
    assert.equal(prepared.length, size);
    await assert.rejects(
      async () => await d.prepare(new Float32Array(size + 1)),
      InvalidImageError,
    );
    const bad = good.slice();
    bad[size >> 1] = NaN;
    await assert.rejects(async () => await d.prepare(bad), InvalidImageError);
  });

  run("a non-finite noise prediction is a ModelRuntimeError", async (d) => {
    const condition = await d.encode(subject.prompt);
    const batch = noisyBatch(d, 1, [0.5], condition);
    batch.noisy.fill(NaN);
    await assert.rejects(async () => await d.predictNoise(batch), ModelRuntimeError);
  });

  run("the model verbs work on it and dispose twice is safe", async (d) => {
    const model = createModel(d);
    const data = await d.prepare(new Float32Array(shapeSize(d.shape)).fill(0.1));
    const total = await model.info(data).given(subject.prompt).samples(2).batchSize(2).total();
    assert.ok(Number.isFinite(total.nats) && total.samples === 2);
    await d.dispose();
    await d.dispose();
  });

  run("a batch whose conditions do not match its items is refused", async (d) => {
    const condition = await d.encode(subject.prompt);
    const batch = noisyBatch(d, 2, [0.5], condition);
    await assert.rejects(
      async () => await d.predictNoise({ ...batch, conditions: [condition] }),
      (e: unknown) => e instanceof InvalidArgumentError || e instanceof ModelRuntimeError,
    );
  });
}

/** `size` items noised at the given α (cycled), data and noise from a fixed seed. */
function noisyBatch(
  d: Denoiser,
  size: number,
  alphas: readonly number[],
  condition: Awaited<ReturnType<Denoiser["encode"]>>,
) {
  const n = shapeSize(d.shape);
  const random = new Random(7);
  const noisy = new Float32Array(size * n);
  const logSnr = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const a = alphas[i % alphas.length];
    logSnr[i] = a;
    const s = sigmoid(a);
    for (let j = 0; j < n; j++) {
      noisy[i * n + j] = Math.sqrt(s) * 0.2 * Math.sin(j) + Math.sqrt(1 - s) * random.gaussian();
    }
  }
  return { noisy, logSnr, conditions: new Array(size).fill(condition) };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
