/**
 * VAE encoders that sample in their graph. diffusers' conversion script, Olive and ONNX Runtime's
 * demo export `latent_dist.sample()`: the latent is mean + exp(½·logvar)·ε with ε drawn by a
 * `RandomNormalLike` node on every run, so the same image gives a different latent each time and
 * its information is not one number. The mean is the value the sampling adds the noise to; it is
 * found in the graph and exposed as an extra output (the same append-only edit as the attention
 * tap), and infodiff reads it instead — what optimum's `latent_parameters` gives directly.
 *
 * @module
 */
import { ModelLoadError } from "../../errors.ts";
import { decodeModelProto } from "./model-proto.ts";

const RANDOM_OPS = new Set([
  "RandomNormalLike",
  "RandomNormal",
  "RandomUniformLike",
  "RandomUniform",
  "Multinomial",
  "Bernoulli",
]);
/** Ops a value passes through unchanged in meaning between the noise and the Mul/Add. */
const PASS_THROUGH = new Set(["Cast", "Identity", "Reshape", "Expand"]);

/** What a VAE encoder graph does at random, if anything. */
export interface InGraphSampling {
  /** the random node (op and name), for messages */
  readonly randomNode: string;
  /** the value the noise is added to: the latent mean */
  readonly mean: string;
}

/**
 * Finds in-graph sampling in an encoder graph: undefined for a deterministic graph, else the
 * random node and the mean it perturbs (the other operand of the `Add` that adds `Mul(ε, σ)`).
 *
 * @param bytes the serialized ONNX model
 * @param source its path, for messages
 * @throws {ModelLoadError} when the graph draws random numbers and no mean can be found
 *
 * @example
 * ```ts
 * import { findInGraphSampling } from "./vae-sampling.ts";
 * const random = Deno.readFileSync("fixtures/models/sd-random-vae/vae_encoder/model.onnx");
 * console.assert(findInGraphSampling(random, "vae_encoder")?.mean === "latent_sample_mean");
 * const fixed = Deno.readFileSync("fixtures/models/sd-vpred/vae_encoder/model.onnx");
 * console.assert(findInGraphSampling(fixed, "vae_encoder") === undefined);
 * ```
 */
export function findInGraphSampling(
  bytes: Uint8Array,
  source: string,
): InGraphSampling | undefined {
  const model = decodeModelProto(bytes, source);
  const nodes = model.graph?.node ?? [];
  const random = nodes.find((n) => RANDOM_OPS.has(n.opType ?? ""));
  if (!random) return undefined;
  const randomNode = `${random.opType} "${random.name ?? ""}"`;
  const consumers = (value: string) => nodes.filter((n) => (n.input ?? []).includes(value));
  // follow the noise through pass-through ops to the Mul that scales it
  const frontier = [...(random.output ?? [])];
  const seen = new Set<string>();
  while (frontier.length > 0) {
    const value = frontier.shift()!;
    if (seen.has(value)) continue;
    seen.add(value);
    for (const node of consumers(value)) {
      if (PASS_THROUGH.has(node.opType ?? "")) frontier.push(...(node.output ?? []));
      else if (node.opType === "Mul") {
        for (const add of consumers(node.output?.[0] ?? "")) {
          if (add.opType !== "Add") continue;
          const mean = (add.input ?? []).find((input) => input !== node.output?.[0]);
          if (mean) return { randomNode, mean };
        }
      }
    }
  }
  throw new ModelLoadError(
    `${source} draws random numbers (${randomNode}) but no mean + σ·ε pattern was found, so its ` +
      `latents cannot be made deterministic; export the VAE encoder with its moments ` +
      `(optimum's latent_parameters), see docs/models.md, "Getting a model"`,
  );
}
