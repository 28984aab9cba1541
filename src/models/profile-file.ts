/**
 * Reading and writing a model's calibrated log-SNR profile (`infodiff calibrate`). A profile kept
 * in the export folder as {@link PROFILE_FILE} is loaded with the model, so every estimate on it
 * draws α from the fitted proposal by default.
 *
 * @module
 */
import { join } from "node:path";
import { InvalidArgumentError, ModelLoadError } from "../errors.ts";
import { checkProfile, type LogSnrProfile } from "../numerics/proposal.ts";

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
