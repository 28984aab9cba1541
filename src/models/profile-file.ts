/**
 * Reading and writing a model's calibrated log-SNR profile (`infodiff calibrate`). A profile kept
 * in the export folder as {@link PROFILE_FILE} is loaded with the model, so every estimate on it
 * draws α from the fitted proposal by default.
 *
 * A study that calibrates itself (issue 26) keeps its profile in infodiff's cache folder, one
 * file per model keyed by the SHA-256 of its identity ({@link storedProfilePath}): any model, a
 * hub model's read-only snapshot included, and the same file for every shard of a study.
 *
 * @module
 */
import { join } from "node:path";
import { homedir } from "node:os";
import { createHash } from "node:crypto";
import { InvalidArgumentError, ModelLoadError } from "../errors.ts";
import { checkProfile, type LogSnrProfile } from "../numerics/proposal.ts";
import type { ModelIdentity } from "./denoiser.ts";
import type { LogSnrRange } from "../numerics/log-snr.ts";

/** The profile's file name inside a model folder. */
export const PROFILE_FILE = "infodiff-logsnr-profile.json";

/**
 * Reads and checks a profile file.
 *
 * @throws {ModelLoadError} when the file cannot be read or is not a profile
 *
 * @example
 * ```ts
 * import { readProfile } from "./profile-file.ts";
 * const profile = await readProfile("fixtures/models/shapes-tiny/infodiff-logsnr-profile.json");
 * console.assert(profile.model.name === "shapes-tiny");
 * ```
 */
export async function readProfile(path: string): Promise<LogSnrProfile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new ModelLoadError(`cannot read the log-SNR profile ${path}`, { cause });
  }
  try {
    return checkProfile(JSON.parse(text));
  } catch (cause) {
    throw new ModelLoadError(
      `${path} is not an infodiff log-SNR profile (expected what \`infodiff calibrate\` writes)`,
      { cause },
    );
  }
}

/**
 * The profile kept in a model folder, if there is one (`profile: false` ignores it; a path
 * reads that file instead).
 *
 * @example
 * ```ts
 * import { folderProfile } from "./profile-file.ts";
 * console.assert((await folderProfile("fixtures/models/sd-lcm")) === undefined);
 * ```
 */
export async function folderProfile(
  dir: string,
  choice: string | false | undefined = undefined,
): Promise<LogSnrProfile | undefined> {
  if (choice === false) return undefined;
  if (typeof choice === "string") return await readProfile(choice);
  if (choice !== undefined) {
    throw new InvalidArgumentError(`profile must be a path or false, got ${typeof choice}`);
  }
  const path = join(dir, PROFILE_FILE);
  try {
    await Deno.stat(path);
  } catch {
    return undefined;
  }
  return await readProfile(path);
}

/**
 * Writes a profile as pretty JSON.
 *
 * @example
 * ```ts ignore
 * import { writeProfile } from "./profile-file.ts";
 * await writeProfile("out/profile.json", profile);
 * ```
 */
export async function writeProfile(path: string, profile: LogSnrProfile): Promise<void> {
  checkProfile(profile);
  await Deno.writeTextFile(path, JSON.stringify(profile, null, 1) + "\n");
}

/** The environment, as `Deno.env.toObject()` gives it. */
export type ProfileEnvironment = Readonly<Record<string, string | undefined>>;

/**
 * infodiff's cache folder: `INFODIFF_CACHE` › `$XDG_CACHE_HOME/infodiff` › `~/.cache/infodiff`.
 *
 * @example
 * ```ts
 * import { infodiffCacheDir } from "./profile-file.ts";
 * console.assert(infodiffCacheDir({ INFODIFF_CACHE: "/c" }) === "/c");
 * console.assert(infodiffCacheDir({ XDG_CACHE_HOME: "/x" }) === "/x/infodiff");
 * ```
 */
export function infodiffCacheDir(env: ProfileEnvironment): string {
  return env.INFODIFF_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "infodiff");
}

/**
 * Where a self-calibrated profile of a model is kept: `<store>/profiles/<sha256>.json`, the store
 * being infodiff's cache folder unless given, or — given the model's trained log-SNR range —
 * `<sha256>-<range key>.json`, so a profile fitted over another range (an infodiff that defined
 * the range otherwise) is never the file a study reads or waits for. Undefined for a model without
 * an identity (a custom backend whose `identity` hashes nothing), whose profile no later run could
 * tell from another's.
 *
 * @example
 * ```ts
 * import { storedProfilePath } from "./profile-file.ts";
 * const id = { name: "m", backend: "onnx", sha256: "ab".repeat(32) };
 * console.assert(storedProfilePath(id, "/c") === `/c/profiles/${"ab".repeat(32)}.json`);
 * console.assert(/-[0-9a-f]{16}\.json$/.test(storedProfilePath(id, "/c", { min: -6, max: 6 })!));
 * console.assert(storedProfilePath({ ...id, sha256: "" }, "/c") === undefined);
 * ```
 */
export function storedProfilePath(
  identity: ModelIdentity,
  store: string,
  range?: LogSnrRange,
): string | undefined {
  if (!/^[0-9a-f]{64}$/.test(identity.sha256)) return undefined;
  if (!range) return join(store, "profiles", `${identity.sha256}.json`);
  const key = createHash("sha256").update(`${range.min},${range.max}`).digest("hex").slice(0, 16);
  return join(store, "profiles", `${identity.sha256}-${key}.json`);
}

/**
 * The stored profile at `path`, if there is one.
 *
 * @throws {ModelLoadError} when a file is there but is not a profile
 *
 * @example
 * ```ts
 * import { readStoredProfile } from "./profile-file.ts";
 * console.assert((await readStoredProfile("out/no-such-profile.json")) === undefined);
 * ```
 */
export async function readStoredProfile(path: string): Promise<LogSnrProfile | undefined> {
  try {
    await Deno.stat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return undefined;
    throw new ModelLoadError(`cannot read the stored log-SNR profile ${path}`, { cause });
  }
  return await readProfile(path);
}

/**
 * Stores a profile at `path` unless one is there already, and returns the one stored: the first
 * writer wins, atomically (the file is written whole under a temporary name, then linked to its
 * name, which fails if that exists), so two processes calibrating the same model at once both end
 * with the same profile and a reader never sees half a file.
 *
 * @example
 * ```ts ignore
 * import { storeProfile } from "./profile-file.ts";
 * const kept = await storeProfile("/cache/profiles/<sha>.json", profile);
 * ```
 */
export async function storeProfile(path: string, profile: LogSnrProfile): Promise<LogSnrProfile> {
  checkProfile(profile);
  const dir = join(path, "..");
  await Deno.mkdir(dir, { recursive: true });
  const temporary = await Deno.makeTempFile({ dir, prefix: ".profile-", suffix: ".json" });
  try {
    await Deno.writeTextFile(temporary, JSON.stringify(profile, null, 1) + "\n");
    try {
      await Deno.link(temporary, path);
      return profile;
    } catch (cause) {
      if (!(cause instanceof Deno.errors.AlreadyExists)) {
        throw new ModelLoadError(`cannot store the log-SNR profile at ${path}`, { cause });
      }
      return await readProfile(path);
    }
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
}

/**
 * Waits until a profile is stored at `path` (another process calibrating), polling every
 * `pollMs`, and returns it, or undefined once `marker` exists; `onWait` hears how long it has
 * waited, once a minute.
 *
 * @throws {ModelLoadError} when `timeoutMs` passes first, naming the file and what to check
 *
 * @example
 * ```ts ignore
 * import { waitForStoredProfile } from "./profile-file.ts";
 * const profile = await waitForStoredProfile(path, { timeoutMs: 3_600_000 });
 * ```
 */
export async function waitForStoredProfile(
  path: string,
  { timeoutMs, pollMs = 5000, onWait, marker }: {
    readonly timeoutMs: number;
    readonly pollMs?: number;
    readonly onWait?: (seconds: number) => void;
    /** a file whose appearance ends the wait without a profile (a calibration that found none) */
    readonly marker?: string;
  },
): Promise<LogSnrProfile | undefined> {
  const started = Date.now();
  let told = started;
  for (;;) {
    const profile = await readStoredProfile(path);
    if (profile) return profile;
    if (marker && await Deno.stat(marker).then(() => true, () => false)) return undefined;
    const now = Date.now();
    if (now - started >= timeoutMs) {
      throw new ModelLoadError(
        `no log-SNR profile appeared at ${path} within ${Math.round(timeoutMs / 1000)} s; ` +
          `expected shard 0 of the study to calibrate and store it (is it running, and did it ` +
          `fail?), or a profile there fitted before the array`,
      );
    }
    if (now - told >= 60_000) {
      told = now;
      onWait?.(Math.round((now - started) / 1000));
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, timeoutMs)));
  }
}
