/**
 * A recording stand-in for a model with cross-attention (issue 23): a mixture oracle on 1×4×4
 * data whose `CrossAttention` records every call it serves, and whose one attention layer (the
 * data's 4×4 grid, one head) holds σ(noisy value) of the item's pixel at every token — so DAAM's
 * raw map of a word is the mean of σ(input) over the gathered items, and the tests can tell which
 * UNet calls were gathered. `predictNoise` records its calls too: the two lists together are every
 * call the model served, in order.
 */
import { mixtureDenoiser } from "../src/models/mixture.ts";
import { type Denoiser, type NoiseBatch, withMembers } from "../src/models/denoiser.ts";
import { Heatmap } from "../src/images/heatmap.ts";

/** One model call as the model saw it. */
export interface RecordedCall {
  /** "noise": `predictNoise`; "attention": `attention.predict` */
  readonly kind: "noise" | "attention";
  /** α of each item */
  readonly logSnr: readonly number[];
  /** the noisy inputs, item-major (a copy) */
  readonly noisy: Float32Array;
  /** the prompt of each item */
  readonly prompts: readonly string[];
}

/** The fake, and every call it served. */
export interface RecordingAttentionModel {
  readonly model: Denoiser;
  readonly calls: RecordedCall[];
}

const SIZE = 4, CONTEXT = 8;

/**
 * The fake: components for "red" and "blue", trained range [−8, 8] (so a schedule-aware law
 * differs from the reference's fixed one), per-item α, one 4×4 layer per item.
 */
export function recordingAttentionModel(batchSize = 64): RecordingAttentionModel {
  const pattern = (f: (p: number) => number) => Array.from({ length: SIZE * SIZE }, (_, p) => f(p));
  const base = mixtureDenoiser({
    shape: [1, SIZE, SIZE],
    name: "recording attention fake",
    batchSize,
    components: [
      { words: ["red"], mean: pattern((p) => (p % SIZE < 2 ? 1 : -1)), variance: 0.3 },
      { words: ["blue"], mean: pattern((p) => (p < 8 ? 1 : -1)), variance: 0.3 },
    ],
  });
  const calls: RecordedCall[] = [];
  const record = (kind: RecordedCall["kind"], batch: NoiseBatch) =>
    calls.push({
      kind,
      logSnr: [...batch.logSnr],
      noisy: batch.noisy.slice(),
      prompts: batch.conditions.map((c) => c.prompt),
    });
  const d = SIZE * SIZE;
  const model = withMembers(base, {
    logSnrRange: { min: -8, max: 8 },
    predictNoise: (batch: NoiseBatch) => {
      record("noise", batch);
      return base.predictNoise(batch);
    },
    attention: {
      contextLength: CONTEXT,
      supported: () => true,
      wordTokens: (prompt: string) =>
        prompt.split(/\s+/).filter(Boolean).map((word, i) => ({
          word: word.toLowerCase(),
          positions: i + 1 < CONTEXT - 1 ? [i + 1] : [],
        })),
      predict: async (batch: NoiseBatch) => {
        record("attention", batch);
        const noise = await base.predictNoise(batch);
        const layers = batch.conditions.map((_, item) => {
          const probs = new Float32Array(d * CONTEXT);
          for (let p = 0; p < d; p++) {
            const v = 1 / (1 + Math.exp(-batch.noisy[item * d + p]));
            probs.fill(v, p * CONTEXT, (p + 1) * CONTEXT);
          }
          return [{
            node: "/up_blocks.1/attentions.0/transformer_blocks.0/attn2/Softmax",
            heads: 1,
            height: SIZE,
            width: SIZE,
            tokens: CONTEXT,
            probs,
          }];
        });
        return { noise, layers };
      },
    },
  }, "recording fake");
  return { model, calls };
}

/** DAAM's raw map of the fake over the given items: the mean of σ(input) per pixel. */
export function expectedRawMap(items: readonly Float32Array[]): Heatmap {
  const d = SIZE * SIZE, total = new Float64Array(d);
  for (const x of items) for (let p = 0; p < d; p++) total[p] += 1 / (1 + Math.exp(-x[p]));
  return new Heatmap(SIZE, SIZE, Float32Array.from(total, (v) => v / items.length));
}

/** Each item of the calls, with its α and prompt. */
export function callItems(
  calls: readonly RecordedCall[],
): { logSnr: number; noisy: Float32Array; prompt: string }[] {
  const d = SIZE * SIZE;
  return calls.flatMap((c) =>
    c.logSnr.map((logSnr, i) => ({
      logSnr,
      noisy: c.noisy.slice(i * d, (i + 1) * d),
      prompt: c.prompts[i],
    }))
  );
}
