/**
 * `loadModel("org/name[@revision][:subfolder]")`: a model from the Hugging Face hub, offline
 * first from the shared cache, else downloaded with `@huggingface/hub` into that cache in Python's
 * layout — only the files the ONNX loader reads for the repository's pipeline (SD 1.x/2.x, SDXL,
 * SD 3/3.5 or FLUX.1: its configs and tokenizers, the graphs it opens, a calibrated log-SNR profile)
 * and the external weights those graphs name, never safetensors, PyTorch weights or safety
 * checkers; resumable, with progress.
 *
 * @module
 */
import { basename, dirname, join, relative } from "node:path";
import { createHash } from "node:crypto";
import { InvalidArgumentError, ModelLoadError } from "../../errors.ts";
import {
  adapterOnlyReason,
  exists,
  pipelinePlan,
  readFolderJson,
  readModelFolder,
} from "../sd/folder.ts";
import { onnxExternalDataFiles } from "../sd/onnx-external-data.ts";
import { PROFILE_FILE } from "../profile-file.ts";
import {
  cachedCommit,
  hubCacheDir,
  hubEndpoint,
  type HubEnvironment,
  type HubModelSpec,
  hubOffline,
  hubToken,
  isCommitHash,
  parseHubSpec,
  repoCacheFolder,
  snapshotFolder,
} from "./cache.ts";

/** Download progress, summed over a model's files. */
export interface DownloadProgress {
  /** the file being downloaded (path in the repository) */
  readonly file: string;
  /** bytes downloaded so far in this run (resumed parts not counted) */
  readonly bytes: number;
  /** bytes to download in this run, as far as known (graphs' external weights join once read) */
  readonly totalBytes: number;
  /** bytes per second in this run */
  readonly rate: number;
  /** estimated seconds left (NaN before the first byte) */
  readonly etaSeconds: number;
}

/** How a hub model is found or fetched (every field falls back to the environment). */
export interface HubOptions {
  /** no network: the cache must already hold the model (default: `HF_HUB_OFFLINE`) */
  readonly offline?: boolean;
  /** the cache folder (default: `HF_HUB_CACHE`, `HF_HOME`/hub, ~/.cache/huggingface/hub) */
  readonly cacheDir?: string;
  /** access token for gated or private repos (default: `HF_TOKEN`, then `$HF_HOME/token`) */
  readonly token?: string;
  /** the hub's address (default: `HF_ENDPOINT`, then https://huggingface.co) */
  readonly endpoint?: string;
  /** called as bytes arrive */
  readonly onDownloadProgress?: (progress: DownloadProgress) => void;
  /** the environment read for the defaults (default `Deno.env.toObject()`) */
  readonly env?: HubEnvironment;
}

/** A hub model in the cache: the folder to load and where it came from. */
export interface HubModel {
  /** `<cache>/models--org--name/snapshots/<commit>[/subfolder]` (symlinks into blobs/, as Python) */
  readonly dir: string;
  /** `org/name` */
  readonly repo: string;
  /** the revision asked for */
  readonly revision: string;
  /** the commit it resolved to */
  readonly commit: string;
  /** the subfolder inside the repository, if any */
  readonly subfolder?: string;
  /** bytes downloaded by this call (0: everything came from the cache) */
  readonly downloadedBytes: number;
}

/** A tokenizer folder's files the loaders read (CLIP: vocab + merges or tokenizer.json; T5: tokenizer.json). */
const TOKENIZER_FILES = [
  "vocab.json",
  "merges.txt",
  "tokenizer.json",
  "special_tokens_map.json",
  "tokenizer_config.json",
];
/** The small files of every family's layout (those a repository has are fetched first). */
const PICKED_FILES = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  ...["tokenizer", "tokenizer_2", "tokenizer_3"].flatMap((dir) =>
    TOKENIZER_FILES.map((file) => `${dir}/${file}`)
  ),
  "text_encoder/config.json",
  "text_encoder_2/config.json",
  "text_encoder_3/config.json",
  "unet/config.json",
  "transformer/config.json",
  "vae/config.json",
  "vae_encoder/config.json",
  "vae_decoder/config.json",
  // a calibrated log-SNR profile shipped with the export: the loader draws α from it by default,
  // so without it the same model would give other numbers from the hub than from its folder
  PROFILE_FILE,
];

/**
 * Finds a hub model in the cache, or downloads what is missing. With a commit in the cache for
 * the revision and every needed file present, no request is made. Otherwise (unless offline) the
 * revision is resolved to a commit, the file list read, the needed files fetched into `blobs/`
 * (resuming a `.incomplete` part with a Range request, checking size and, for LFS files, SHA-256),
 * linked from `snapshots/<commit>/` by relative symlinks, and `refs/<revision>` written.
 *
 * @example
 * ```ts ignore
 * import { resolveHubModel } from "./resolve.ts";
 * const model = await resolveHubModel({ repo: "onnx-community/stable-diffusion-v1-5-ONNX", revision: "main" });
 * console.log(model.dir, model.commit);
 * ```
 */
export async function resolveHubModel(
  spec: HubModelSpec,
  options: HubOptions = {},
): Promise<HubModel> {
  const env = options.env ?? Deno.env.toObject();
  const cache = options.cacheDir ?? hubCacheDir(env);
  const offline = options.offline ?? hubOffline(env);
  const known = await cachedCommit(cache, spec.repo, spec.revision);
  if (known) {
    const dir = snapshotFolder(cache, spec, known);
    const missing = await missingModelFiles(dir);
    if (missing.length === 0) return { ...located(spec, known, dir), downloadedBytes: 0 };
    if (offline) {
      throw new ModelLoadError(
        `${spec.repo}@${spec.revision} (commit ${known}) is in the cache at ${dir} but lacks ` +
          `${missing.join(", ")}; offline (HF_HUB_OFFLINE or offline: true), so nothing can be ` +
          `fetched. Run \`infodiff fetch ${specText(spec)}\` with network first`,
      );
    }
  } else if (offline) {
    throw new ModelLoadError(
      `${spec.repo}@${spec.revision} is not in the hub cache ${cache} and downloads are off ` +
        `(HF_HUB_OFFLINE or offline: true); run \`infodiff fetch ${specText(spec)}\` where ` +
        `there is network, or point HF_HUB_CACHE at a cache that has it`,
    );
  }
  return await download(spec, cache, env, options);
}

function located(spec: HubModelSpec, commit: string, dir: string) {
  return {
    dir,
    repo: spec.repo,
    revision: spec.revision,
    commit,
    ...(spec.subfolder ? { subfolder: spec.subfolder } : {}),
  };
}

function specText(spec: HubModelSpec): string {
  return `${spec.repo}${spec.revision === "main" ? "" : `@${spec.revision}`}${
    spec.subfolder ? `:${spec.subfolder}` : ""
  }`;
}

/**
 * What a model folder lacks for loading: the layout's files (as `loadModel` reads them) and the
 * external weights its graphs name. Empty when it is complete.
 *
 * @example
 * ```ts
 * import { missingModelFiles } from "./resolve.ts";
 * console.assert((await missingModelFiles("fixtures/models/sd-scalart-onnxdata")).length === 0);
 * console.assert((await missingModelFiles("/nowhere")).length === 1);
 * ```
 */
export async function missingModelFiles(dir: string): Promise<string[]> {
  let folder;
  try {
    folder = await readModelFolder(dir);
  } catch (error) {
    return [(error as Error).message];
  }
  const missing: string[] = [];
  for (const graph of folder.graphs) {
    for (const file of onnxExternalDataFiles(await Deno.readFile(graph), graph)) {
      const path = join(dirname(graph), file);
      if (!(await exists(path))) missing.push(relative(dir, path));
    }
  }
  return missing;
}

interface HubClient {
  modelInfo: typeof import("npm:@huggingface/hub@2.17.5").modelInfo;
  listFiles: typeof import("npm:@huggingface/hub@2.17.5").listFiles;
  fileDownloadInfo: typeof import("npm:@huggingface/hub@2.17.5").fileDownloadInfo;
}

interface Listed {
  readonly size: number;
  /** LFS files: their SHA-256 (what the blob is named and checked against) */
  readonly lfsSha256?: string;
}

async function download(
  spec: HubModelSpec,
  cache: string,
  env: HubEnvironment,
  options: HubOptions,
): Promise<HubModel> {
  const hub: HubClient = await import("npm:@huggingface/hub@2.17.5");
  const hubUrl = options.endpoint ?? hubEndpoint(env);
  const accessToken = options.token ?? await hubToken(env);
  const credentials = { hubUrl, ...(accessToken ? { accessToken } : {}) };
  const what = `${spec.repo}@${spec.revision}`;
  const commit = isCommitHash(spec.revision)
    ? spec.revision
    : await hubCall(what, hubUrl, async () => {
      const info = await hub.modelInfo({
        name: spec.repo,
        revision: spec.revision,
        additionalFields: ["sha"],
        ...credentials,
      });
      if (!info.sha || !isCommitHash(info.sha)) {
        throw new ModelLoadError(`${hubUrl} gave no commit for ${what}`);
      }
      return info.sha;
    });
  const prefix = spec.subfolder ? `${spec.subfolder}/` : "";
  const listing = await hubCall(what, hubUrl, async () => {
    const files = new Map<string, Listed>();
    for await (
      const entry of hub.listFiles({
        repo: spec.repo,
        revision: commit,
        recursive: true,
        ...(spec.subfolder ? { path: spec.subfolder } : {}),
        ...credentials,
      })
    ) {
      if (entry.type !== "file" || !entry.path.startsWith(prefix)) continue;
      files.set(entry.path.slice(prefix.length), {
        size: entry.size,
        ...(entry.lfs ? { lfsSha256: entry.lfs.oid } : {}),
      });
    }
    return files;
  });
  const repoFolder = repoCacheFolder(cache, spec.repo);
  const root = snapshotFolder(cache, spec, commit);
  const fetcher = new BlobFetcher(hub, spec, commit, repoFolder, root, credentials, options);
  // a repository without model_index.json may be an adapter (a ControlNet) its config.json names
  let config: Record<string, unknown> | undefined;
  if (!listing.has("model_index.json") && listing.has("config.json")) {
    await fetcher.expect([["config.json", listing.get("config.json")!]]);
    await fetcher.fetch("config.json", listing.get("config.json")!);
    config = await readFolderJson(join(root, "config.json"), what).catch(() => undefined);
  }
  checkRepoLayout(what, spec, listing, config);

  const configs = PICKED_FILES.filter((file) => listing.has(file));
  await fetcher.expect(configs.map((file) => [file, listing.get(file)!]));
  for (const file of configs) await fetcher.fetch(file, listing.get(file)!);
  // the pipeline is known from model_index.json and the file list before any graph is fetched:
  // a refused one costs nothing more, and only the graphs its pipeline opens are downloaded
  const plan = await pipelinePlan(
    await readFolderJson(join(root, "model_index.json"), `${what}${prefix ? ` ${prefix}` : ""}`),
    (part) =>
      Promise.resolve([...listing.keys()].some((f) => f === part || f.startsWith(`${part}/`))),
    `${what}${spec.subfolder ? ` in ${spec.subfolder}/` : ""}`,
  );
  const graphs = plan.graphs.filter((file) => listing.has(file));
  await fetcher.expect(graphs.map((file) => [file, listing.get(file)!]));
  for (const file of graphs) await fetcher.fetch(file, listing.get(file)!);
  const weights: string[] = [];
  for (const graph of graphs) {
    const bytes = await Deno.readFile(join(root, graph));
    for (const name of onnxExternalDataFiles(bytes, `${what}/${prefix}${graph}`)) {
      const file = join(dirname(graph), name).split("\\").join("/");
      if (!listing.has(file)) {
        throw new ModelLoadError(
          `${what}: ${prefix}${graph} keeps its weights in ${name}, which the repository does not ` +
            `have at ${prefix}${file}; expected the export's external-data file beside its graph`,
        );
      }
      weights.push(file);
    }
  }
  await fetcher.expect(weights.map((file) => [file, listing.get(file)!]));
  for (const file of weights) await fetcher.fetch(file, listing.get(file)!);
  if (!isCommitHash(spec.revision)) {
    const ref = join(repoFolder, "refs", spec.revision);
    await Deno.mkdir(dirname(ref), { recursive: true });
    await Deno.writeTextFile(ref, commit); // Python writes the bare hash, no newline
  }
  return { ...located(spec, commit, root), downloadedBytes: fetcher.downloaded };
}

/**
 * Refuses repositories that hold no ONNX diffusers layout (adapter weights alone, PyTorch weights,
 * no model_index.json), saying what they hold instead.
 */
function checkRepoLayout(
  what: string,
  spec: HubModelSpec,
  listing: Map<string, Listed>,
  config?: Record<string, unknown>,
): void {
  const at = spec.subfolder ? ` in ${spec.subfolder}/` : "";
  const files = [...listing.keys()];
  const adapter = adapterOnlyReason(files, config);
  if (adapter) throw new ModelLoadError(`${what}${at} ${adapter}`);
  const denoiser = listing.has("unet/model.onnx") || listing.has("transformer/model.onnx");
  if (!listing.has("model_index.json") || !denoiser) {
    const indexes = files.filter((f) => f.endsWith("model_index.json"));
    const pytorch = files.some((f) => /^(unet|transformer)\/diffusion_pytorch_model/.test(f));
    throw new ModelLoadError(
      `${what}${at} is not an ONNX diffusers export: ` +
        (listing.has("model_index.json")
          ? "it has no unet/model.onnx or transformer/model.onnx"
          : "it has no model_index.json") +
        (pytorch
          ? ' (it holds PyTorch weights: export it to ONNX, see docs/models.md, "Getting a model")'
          : "") +
        (indexes.length > 0 && !listing.has("model_index.json")
          ? `; model_index.json files are at ${
            indexes.join(", ")
          } (name the folder as org/name:folder)`
          : ""),
    );
  }
}

/** Runs a hub request, turning the client's errors into a load error that says what to do. */
async function hubCall<T>(what: string, hubUrl: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ModelLoadError) throw error;
    const status = (error as { statusCode?: number }).statusCode;
    const advice = status === 401 || status === 403
      ? "the repository is gated or private: set HF_TOKEN (or run `huggingface-cli login`) " +
        "with a token that has access"
      : status === 404
      ? "no such repository or revision (the SD repos moved: runwayml/stable-diffusion-v1-5 is " +
        "now stable-diffusion-v1-5/stable-diffusion-v1-5)"
      : `the hub at ${hubUrl} could not be read (set HF_HUB_OFFLINE=1 to use the cache only)`;
    throw new ModelLoadError(`cannot fetch ${what}: ${advice}`, { cause: error });
  }
}

/** Downloads files of one commit into blobs/ and links them from the snapshot, with progress. */
class BlobFetcher {
  downloaded = 0;
  #total = 0;
  #started = performance.now();

  constructor(
    readonly hub: HubClient,
    readonly spec: HubModelSpec,
    readonly commit: string,
    readonly repoFolder: string,
    readonly root: string,
    readonly credentials: { hubUrl: string; accessToken?: string },
    readonly options: HubOptions,
  ) {}

  /** Adds the files not yet in the snapshot to the bytes expected. */
  async expect(files: readonly (readonly [string, Listed])[]): Promise<void> {
    for (const [file, listed] of files) {
      if (!(await exists(join(this.root, file)))) this.#total += listed.size;
    }
  }

  async fetch(file: string, listed: Listed): Promise<void> {
    const pointer = join(this.root, file);
    if (await exists(pointer)) return;
    const path = this.spec.subfolder ? `${this.spec.subfolder}/${file}` : file;
    const what = `${this.spec.repo}@${this.commit.slice(0, 8)}/${path}`;
    const info = await hubCall(what, this.credentials.hubUrl, () =>
      this.hub.fileDownloadInfo({
        repo: this.spec.repo,
        path,
        revision: this.commit,
        ...this.credentials,
      }));
    if (!info) throw new ModelLoadError(`${what} is listed but cannot be downloaded (404)`);
    if (info.size !== listed.size) {
      throw new ModelLoadError(
        `${what}: the hub lists ${listed.size} bytes but serves ${info.size}; expected equal sizes`,
      );
    }
    const etag = listed.lfsSha256 ?? info.etag.replace(/^W\//, "").replace(/"/g, "");
    const blob = join(this.repoFolder, "blobs", etag);
    // other processes (a job array's tasks on one cache) may fetch the same blob: one downloads
    // it under the lock Python's client uses, .locks/<repo folder>/<etag>.lock, the others wait
    const lock = join(
      dirname(this.repoFolder),
      ".locks",
      basename(this.repoFolder),
      `${etag}.lock`,
    );
    await withFileLock(lock, async () => {
      if (!(await exists(blob))) await this.#download(what, info.url, blob, listed, file);
    });
    await Deno.mkdir(dirname(pointer), { recursive: true });
    await linkOnce(relative(dirname(pointer), blob), pointer);
  }

  async #download(what: string, url: string, blob: string, listed: Listed, file: string) {
    await Deno.mkdir(dirname(blob), { recursive: true });
    const incomplete = `${blob}.incomplete`;
    let have = 0;
    try {
      have = (await Deno.stat(incomplete)).size;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (have > listed.size) have = 0;
    // a part of full size only needs checking; anything shorter is continued with a Range request
    const bytes = have === listed.size
      ? have
      : await this.#transfer(what, url, incomplete, have, file);
    if (bytes !== listed.size) {
      throw new ModelLoadError(
        `download of ${what} ended at ${bytes} of ${listed.size} bytes; run again to resume`,
      );
    }
    if (listed.lfsSha256 && (await fileSha256(incomplete)) !== listed.lfsSha256) {
      await Deno.remove(incomplete);
      throw new ModelLoadError(
        `${what}: the downloaded bytes do not have the SHA-256 the hub lists (${listed.lfsSha256}); ` +
          `the partial file was removed, run again`,
      );
    }
    await Deno.rename(incomplete, blob);
  }

  /** Appends the rest of the file to `incomplete` from byte `have`; returns its size. */
  async #transfer(
    what: string,
    url: string,
    incomplete: string,
    have: number,
    file: string,
  ): Promise<number> {
    const headers: Record<string, string> = {};
    const sameOrigin = new URL(url).origin === new URL(this.credentials.hubUrl).origin;
    if (this.credentials.accessToken && sameOrigin) {
      headers.Authorization = `Bearer ${this.credentials.accessToken}`;
    }
    if (have > 0) headers.Range = `bytes=${have}-`;
    const response = await fetch(url, { headers });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new ModelLoadError(`cannot download ${what}: HTTP ${response.status} from ${url}`);
    }
    if (have > 0 && response.status !== 206) have = 0; // the server ignored the range
    this.#total -= have;
    using out = await Deno.open(incomplete, {
      write: true,
      create: true,
      append: have > 0,
      truncate: have === 0,
    });
    let bytes = have;
    try {
      for await (const chunk of response.body) {
        await writeAll(out, chunk);
        bytes += chunk.length;
        this.downloaded += chunk.length;
        this.#report(file);
      }
    } catch (error) {
      throw new ModelLoadError(
        `download of ${what} was interrupted after ${bytes} bytes; run again to resume from there`,
        { cause: error },
      );
    }
    return bytes;
  }

  #report(file: string): void {
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = this.downloaded / Math.max(seconds, 1e-9);
    this.options.onDownloadProgress?.({
      file,
      bytes: this.downloaded,
      totalBytes: Math.max(this.#total, this.downloaded),
      rate,
      etaSeconds: this.downloaded > 0 ? (this.#total - this.downloaded) / rate : NaN,
    });
  }
}

/**
 * Runs `work` holding an exclusive advisory lock on `path` (created if missing). The operating
 * system releases it if the process dies, so a killed download never blocks the next one.
 */
async function withFileLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dirname(path), { recursive: true });
  using file = await Deno.open(path, { write: true, create: true });
  await file.lock(true);
  try {
    return await work();
  } finally {
    await file.unlock();
  }
}

/** Links `pointer` to `target`, unless another process has just made the same link. */
async function linkOnce(target: string, pointer: string): Promise<void> {
  try {
    await Deno.symlink(target, pointer);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    const existing = await Deno.readLink(pointer);
    if (existing !== target) {
      throw new ModelLoadError(
        `${pointer} links to ${existing}, expected ${target}: the cache was changed while loading`,
        { cause: error },
      );
    }
  }
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  for (let read = await file.read(buffer); read !== null; read = await file.read(buffer)) {
    hash.update(buffer.subarray(0, read));
  }
  return hash.digest("hex");
}

/** Where a model folder is: on disk as given, or a hub snapshot with its source. */
export interface LocatedModel {
  /** the folder to load */
  readonly dir: string;
  /** the display name (the folder's name, or the repository's) */
  readonly name: string;
  /** the hub repository and commit, for a hub model */
  readonly source?: { readonly repo: string; readonly revision: string; readonly commit: string };
}

/**
 * A local path wins; otherwise `org/name[@revision][:subfolder]` is looked up on the hub
 * ({@link resolveHubModel}); anything else is returned as the path it is (the loader then says
 * what is missing there).
 *
 * @example
 * ```ts
 * import { locateModelFolder } from "./resolve.ts";
 * const local = await locateModelFolder("fixtures/models/sd-vpred");
 * console.assert(local.dir === "fixtures/models/sd-vpred" && local.source === undefined);
 * ```
 */
export async function locateModelFolder(
  location: string,
  options: HubOptions = {},
): Promise<LocatedModel> {
  if (typeof location !== "string" || location === "") {
    throw new InvalidArgumentError(
      `a model location must be a folder path or a hub id "org/name[@revision]", got ${
        JSON.stringify(location)
      }`,
    );
  }
  if (options.offline !== undefined && typeof options.offline !== "boolean") {
    throw new InvalidArgumentError(`offline must be true or false, got ${options.offline}`);
  }
  const name = (path: string) => basename(path.replace(/[\\/]+$/, "")) || path;
  if (await exists(location)) return { dir: location, name: name(location) };
  const spec = parseHubSpec(location);
  if (!spec) return { dir: location, name: name(location) };
  const model = await resolveHubModel(spec, options);
  return {
    dir: model.dir,
    name: name(spec.subfolder ? `${spec.repo}/${spec.subfolder}` : spec.repo),
    source: { repo: model.repo, revision: model.revision, commit: model.commit },
  };
}
