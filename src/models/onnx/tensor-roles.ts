/**
 * Which input or output of an exported graph plays which part. Exporters name the same tensor
 * differently (optimum and diffusers `last_hidden_state`/`out_sample`/`sample`, ONNX Runtime's SD
 * engines `text_embeddings`/`latent`/`images`), and some leave generated names (`onnx::Concat_4`):
 * a tensor is found by one of its known names first, else as the only unclaimed tensor of the
 * right rank and type.
 *
 * @module
 */
import { ModelLoadError } from "../../errors.ts";
import { describeTensors, type TensorInfo } from "./session.ts";

/** A part a tensor can play: its known names (preferred first) and the rank and types it has. */
export interface TensorRole {
  /** what the part is called in messages, e.g. "encoder_hidden_states" */
  readonly role: string;
  /** names exporters give it */
  readonly names: readonly string[];
  /** its rank (number of dimensions); several when exports differ (a timestep: [] or [B]) */
  readonly ranks: readonly number[];
  /** onnxruntime types it may have */
  readonly types: readonly string[];
}

const FLOATS = ["float32", "float16"];
const INTS = ["int32", "int64"];

/** The UNet's inputs. */
export const UNET_INPUTS: readonly TensorRole[] = [
  { role: "sample", names: ["sample"], ranks: [4], types: FLOATS },
  {
    role: "timestep",
    names: ["timestep", "timesteps", "t"],
    ranks: [0, 1],
    types: [...FLOATS, ...INTS],
  },
  { role: "encoder_hidden_states", names: ["encoder_hidden_states"], ranks: [3], types: FLOATS },
];
/** The UNet's noise (or v) prediction. */
export const UNET_OUTPUT: TensorRole = {
  role: "out_sample",
  names: ["out_sample", "latent", "noise_pred"],
  ranks: [4],
  types: FLOATS,
};
/** The inputs of SD 3's and FLUX.1's transformers (optimum's names). */
export const TRANSFORMER_INPUTS: readonly TensorRole[] = [
  // SD 3: latents [B, C, H, W]; FLUX.1: packed tokens [B, H·W/4, 4C]
  { role: "hidden_states", names: ["hidden_states"], ranks: [3, 4], types: FLOATS },
  // flow time: 1000·t (SD 3), t (FLUX.1): a float, never an integer index
  { role: "timestep", names: ["timestep", "timesteps"], ranks: [0, 1], types: FLOATS },
  { role: "encoder_hidden_states", names: ["encoder_hidden_states"], ranks: [3], types: FLOATS },
];
/** The transformer's velocity prediction. */
export const TRANSFORMER_OUTPUT: TensorRole = {
  role: "out_hidden_states",
  names: ["out_hidden_states", "sample"],
  ranks: [3, 4],
  types: FLOATS,
};
/** The text encoder's token ids. */
export const TEXT_INPUT: TensorRole = {
  role: "input_ids",
  names: ["input_ids"],
  ranks: [2],
  types: INTS,
};
/** The text encoder's per-token hidden states. */
export const TEXT_OUTPUT: TensorRole = {
  role: "last_hidden_state",
  names: ["last_hidden_state", "text_embeddings"],
  ranks: [3],
  types: FLOATS,
};
/** The VAE encoder's image input. */
export const VAE_ENCODER_INPUT: TensorRole = {
  role: "sample",
  names: ["sample", "images"],
  ranks: [4],
  types: FLOATS,
};
/** The VAE encoder's latent (moments, or a latent that may be sampled in the graph). */
export const VAE_ENCODER_OUTPUT: TensorRole = {
  role: "latent",
  names: ["latent_parameters", "latent_sample", "latent", "latent_dist"],
  ranks: [4],
  types: FLOATS,
};
/** The VAE decoder's latent input. */
export const VAE_DECODER_INPUT: TensorRole = {
  role: "latent_sample",
  names: ["latent_sample", "latent"],
  ranks: [4],
  types: FLOATS,
};
/** The VAE decoder's image. */
export const VAE_DECODER_OUTPUT: TensorRole = {
  role: "sample",
  names: ["sample", "images"],
  ranks: [4],
  types: FLOATS,
};

/**
 * Finds each role's tensor: by name (the first known name present), else the one tensor of the
 * role's rank and type that no role claims by name. Tensors left over are returned for the caller
 * to accept or refuse.
 *
 * @param tensors a session's inputs or outputs
 * @param roles the parts to find
 * @param what the graph and side, for messages ("unet/model.onnx inputs")
 * @throws {ModelLoadError} when a part is missing, or several tensors could play it
 *
 * @example
 * ```ts
 * import { matchTensors, TEXT_OUTPUT } from "./tensor-roles.ts";
 * const outputs = new Map([["text_embeddings", { name: "text_embeddings", type: "float32", shape: [1, 77, 768] }]]);
 * const { found } = matchTensors(outputs, [TEXT_OUTPUT], "text_encoder outputs");
 * console.assert(found.get("last_hidden_state")?.name === "text_embeddings");
 * ```
 */
export function matchTensors(
  tensors: ReadonlyMap<string, TensorInfo>,
  roles: readonly TensorRole[],
  what: string,
): { found: Map<string, TensorInfo>; rest: TensorInfo[] } {
  const found = new Map<string, TensorInfo>();
  const claimed = new Set<string>();
  for (const role of roles) {
    const name = role.names.find((n) => tensors.has(n) && !claimed.has(n));
    if (name) {
      found.set(role.role, tensors.get(name)!);
      claimed.add(name);
    }
  }
  const knownNames = new Set(roles.flatMap((r) => r.names));
  for (const role of roles.filter((r) => !found.has(r.role))) {
    const candidates = [...tensors.values()].filter((t) =>
      !claimed.has(t.name) && !knownNames.has(t.name) && fits(role, t)
    );
    if (candidates.length !== 1) {
      const expected = `${role.role} (named ${role.names.join(" or ")}, or the only ` +
        `${role.types.join("/")} tensor of rank ${role.ranks.join(" or ")})`;
      throw new ModelLoadError(
        candidates.length === 0
          ? `${what}: found no ${expected}; the graph has ${describeTensors(new Map(tensors))}`
          : `${what}: ${candidates.map((c) => c.name).join(", ")} could each be ${expected}; ` +
            `rename them in the export`,
      );
    }
    found.set(role.role, candidates[0]);
    claimed.add(candidates[0].name);
  }
  for (const role of roles) {
    const info = found.get(role.role)!;
    if (!fits(role, info)) {
      throw new ModelLoadError(
        `${what}: ${info.name} is ${info.type}[${info.shape.join(",")}]; expected ${role.role} ` +
          `to be ${role.types.join(" or ")} of rank ${role.ranks.join(" or ")}`,
      );
    }
  }
  return { found, rest: [...tensors.values()].filter((t) => !claimed.has(t.name)) };
}

function fits(role: TensorRole, info: TensorInfo): boolean {
  return role.ranks.includes(info.shape.length) && role.types.includes(info.type);
}

/**
 * The tensor playing one role (see {@link matchTensors}).
 *
 * @throws {ModelLoadError} when it is missing or several tensors could play it
 *
 * @example
 * ```ts
 * import { matchTensor, TEXT_OUTPUT } from "./tensor-roles.ts";
 * const outputs = new Map([["text_embeddings", { name: "text_embeddings", type: "float32", shape: [1, 77, 768] }]]);
 * console.assert(matchTensor(outputs, TEXT_OUTPUT, "text_encoder outputs").name === "text_embeddings");
 * ```
 */
export function matchTensor(
  tensors: ReadonlyMap<string, TensorInfo>,
  role: TensorRole,
  what: string,
): TensorInfo {
  return matchTensors(tensors, [role], what).found.get(role.role)!;
}

/**
 * A graph's one input, playing `role`; any other input is refused, since infodiff would not know
 * what to feed it.
 *
 * @param expected the input as the message describes it ("input_ids int32/int64 [B,77]")
 * @throws {ModelLoadError} for a missing role or an extra input
 *
 * @example
 * ```ts
 * import { onlyInput, TEXT_INPUT } from "./tensor-roles.ts";
 * const inputs = new Map([["input_ids", { name: "input_ids", type: "int64", shape: [1, 77] }]]);
 * console.assert(onlyInput(inputs, TEXT_INPUT, "text_encoder/model.onnx", "input_ids").type === "int64");
 * ```
 */
export function onlyInput(
  inputs: ReadonlyMap<string, TensorInfo>,
  role: TensorRole,
  source: string,
  expected: string,
): TensorInfo {
  const { found, rest } = matchTensors(inputs, [role], `${source} inputs`);
  if (rest.length > 0) {
    throw new ModelLoadError(
      `${source}: expected one input ${expected}; found inputs ${describeTensors(new Map(inputs))}`,
    );
  }
  return found.get(role.role)!;
}
