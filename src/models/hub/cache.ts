/**
 * The Hugging Face hub's local cache, in exactly the layout Python's `huggingface_hub` writes
 * (`models--org--name/{blobs,refs,snapshots}`), so one cache serves both, and the environment
 * variables that configure it (`HF_HUB_CACHE`, `HF_HOME`, `HF_TOKEN`, `HF_ENDPOINT`,
 * `HF_HUB_OFFLINE`).
 *
 * @module
 */
import { join } from "node:path";
import { homedir } from "node:os";
import { InvalidArgumentError } from "../../errors.ts";

/** A model on the hub: `org/name`, a revision (branch, tag or commit) and an optional subfolder. */
export interface HubModelSpec {
  /** the repository, `org/name` */
  readonly repo: string;
  /** a branch, tag or 40-hex commit (default "main") */
  readonly revision: string;
  /** the folder inside the repository that holds the SD layout, if not its root */
  readonly subfolder?: string;
}

/** The environment, as `Deno.env.toObject()` gives it. */
export type HubEnvironment = Readonly<Record<string, string | undefined>>;

const REPO = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Parses `org/name[@revision][:subfolder]`; undefined for anything that is not of that form (a
 * local path such as `./models/sd15` or `/data/sd15`).
 *
 * @example
 * ```ts
 * import { parseHubSpec } from "./cache.ts";
 * const spec = parseHubSpec("onnx-community/stable-diffusion-v1-5-ONNX@main:onnx");
 * console.assert(spec?.repo === "onnx-community/stable-diffusion-v1-5-ONNX" && spec.subfolder === "onnx");
 * console.assert(parseHubSpec("./sd15") === undefined && parseHubSpec("/data/a/b") === undefined);
 * ```
 */
export function parseHubSpec(text: string): HubModelSpec | undefined {
  const match = /^([^@:]+)(?:@([^:]+))?(?::(.+))?$/.exec(text);
  if (!match || !REPO.test(match[1])) return undefined;
  const [, repo, revision = "main", subfolder] = match;
  if (
    subfolder !== undefined && (subfolder.split("/").includes("..") || subfolder.startsWith("/"))
  ) {
    throw new InvalidArgumentError(
      `"${text}": the subfolder must be a path inside the repository, got "${subfolder}"`,
    );
  }
  return { repo, revision, ...(subfolder ? { subfolder: subfolder.replace(/\/+$/, "") } : {}) };
}

/** Whether a revision is a full commit hash (then no ref needs resolving). */
export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

/**
 * The cache folder: `HF_HUB_CACHE` › `HUGGINGFACE_HUB_CACHE` › `$HF_HOME/hub` ›
 * `$XDG_CACHE_HOME/huggingface/hub` › `~/.cache/huggingface/hub` (Python's order).
 *
 * @example
 * ```ts
 * import { hubCacheDir } from "./cache.ts";
 * console.assert(hubCacheDir({ HF_HOME: "/hf" }) === "/hf/hub");
 * console.assert(hubCacheDir({ HF_HUB_CACHE: "/c", HF_HOME: "/hf" }) === "/c");
 * ```
 */
export function hubCacheDir(env: HubEnvironment): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hubHome(env), "hub");
}

function hubHome(env: HubEnvironment): string {
  return env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
}

/**
 * The access token: `HF_TOKEN` › `HUGGING_FACE_HUB_TOKEN` › the file at `HF_TOKEN_PATH` ›
 * `$HF_HOME/token` (what `huggingface-cli login` writes); undefined when there is none.
 *
 * @example
 * ```ts
 * import { hubToken } from "./cache.ts";
 * console.assert(await hubToken({ HF_TOKEN: "hf_x", HF_HOME: "/nowhere" }) === "hf_x");
 * console.assert(await hubToken({ HF_HOME: "/nowhere" }) === undefined);
 * ```
 */
export async function hubToken(env: HubEnvironment): Promise<string | undefined> {
  const direct = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (direct) return direct.trim();
  const path = env.HF_TOKEN_PATH || join(hubHome(env), "token");
  try {
    const token = (await Deno.readTextFile(path)).trim();
    return token || undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** `HF_ENDPOINT`, or the public hub. */
export function hubEndpoint(env: HubEnvironment): string {
  return (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, "");
}

/** Whether `HF_HUB_OFFLINE` asks for no network (1, ON, YES or TRUE, as Python reads it). */
export function hubOffline(env: HubEnvironment): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((env.HF_HUB_OFFLINE ?? "").toUpperCase());
}

/** The repository's folder in the cache: `<cache>/models--org--name`. */
export function repoCacheFolder(cache: string, repo: string): string {
  return join(cache, `models--${repo.split("/").join("--")}`);
}

/**
 * The commit a revision points to in the cache (`refs/<revision>`, or the revision itself when it
 * is a commit); undefined when the cache has never resolved it.
 *
 * @example
 * ```ts
 * import { cachedCommit } from "./cache.ts";
 * console.assert(await cachedCommit("/nowhere", "org/name", "main") === undefined);
 * ```
 */
export async function cachedCommit(
  cache: string,
  repo: string,
  revision: string,
): Promise<string | undefined> {
  if (isCommitHash(revision)) return revision;
  try {
    const commit = (await Deno.readTextFile(join(repoCacheFolder(cache, repo), "refs", revision)))
      .trim();
    return isCommitHash(commit) ? commit : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** `<cache>/models--org--name/snapshots/<commit>[/subfolder]`: the folder a model loads from. */
export function snapshotFolder(cache: string, spec: HubModelSpec, commit: string): string {
  const root = join(repoCacheFolder(cache, spec.repo), "snapshots", commit);
  return spec.subfolder ? join(root, spec.subfolder) : root;
}
