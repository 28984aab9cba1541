/**
 * The results file of a study: a header line that says who wrote it (infodiff version, study,
 * settings, model identity), then one JSON line per finished item. Opening it checks the path,
 * takes an exclusive lock, compares the header with this run, and repairs what a crash can leave
 * (a line cut short, a lost trailing newline) without ever truncating finished rows in place.
 *
 * @module
 */
import { dirname } from "node:path";
import { ResultsFileError } from "../errors.ts";
import type { ModelIdentity } from "../models/denoiser.ts";
import { VERSION } from "../version.ts";
import { warn } from "../warnings.ts";

/** Which part of the items a process runs: items whose position % count === index. */
export interface Shard {
  /** this shard, 0 ≤ index < count */
  readonly index: number;
  /** number of shards */
  readonly count: number;
}

/** What a results file's header records about the run that wrote it. */
export interface StudyDescription {
  /** the study, e.g. "localization" */
  readonly study: string;
  /** every setting that changes the numbers (estimator options resolved, study options) */
  readonly settings: Readonly<Record<string, unknown>>;
  /** the model's identity (name, backend, content hash, source) */
  readonly model?: ModelIdentity;
  /** the shard this file holds (absent: all items, or a merged file) */
  readonly shard?: Shard;
  /** items of the shard when the file was created (what a merge expects to find) */
  readonly items?: number;
}

/** A bad row: its id, what was wrong, and the error's class name. */
export interface StudyFailure {
  /** the row's id */
  readonly id: string;
  /** the error message, then each cause's on its own line (`caused by: …`) */
  readonly error: string;
  /** the error class, e.g. "PromptError" */
  readonly kind: string;
}

/** One line of a results file. */
export type StudyRecord<R> =
  | { readonly id: string; readonly ok: true; readonly result: R }
  | ({ readonly ok: false } & StudyFailure);

/** The `format` of a results file's header line. */
export const RESULTS_FORMAT = "infodiff-results";

/** The first line of a results file. */
export interface ResultsHeader {
  /** always {@link RESULTS_FORMAT} */
  readonly format: typeof RESULTS_FORMAT;
  /** version of the line format (1) */
  readonly formatVersion: 1;
  /** the infodiff version that created the file */
  readonly infodiff: string;
  /** when the file was created (ISO 8601) */
  readonly created: string;
  /** the study */
  readonly study: string;
  /** every setting that changes the numbers */
  readonly settings: Readonly<Record<string, unknown>>;
  /** the model */
  readonly model?: ModelIdentity;
  /** the shard the file holds (absent: all items) */
  readonly shard?: Shard;
  /** items of the shard when the file was created */
  readonly items?: number;
  /** for a merged file: the shard files it was made from */
  readonly mergedFrom?: readonly string[];
}

/** A results file read without changing it: its header, records and what a crash left. */
export interface ResultsContent<R> {
  /** the header line, if the file has one */
  readonly header?: ResultsHeader;
  /** records by id (the last line of an id wins) */
  readonly records: Map<string, StudyRecord<R>>;
  /** the non-empty lines that parsed, in order (header included) */
  readonly lines: readonly string[];
  /** true when the last line was cut short by a crash (it is not among `lines`) */
  readonly cutShort: boolean;
  /** true when the file does not end with a newline */
  readonly missingNewline: boolean;
}

/**
 * Reads a results file without changing it (a missing file reads as empty).
 *
 * @throws {ResultsFileError} when it cannot be read or a line other than the last is not JSON
 *
 * @example
 * ```ts
 * import { readResults } from "./results-file.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"id":"a","ok":true,"result":1}\n{"id":"b","ok":tr');
 * const content = await readResults(path);
 * console.assert(content.records.size === 1 && content.cutShort && !content.header);
 * ```
 */
export async function readResults<R>(path: string): Promise<ResultsContent<R>> {
  const text = await Deno.readTextFile(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return "";
    throw new ResultsFileError(`cannot read the results file ${path}`, { cause: error });
  });
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  const lines: string[] = [], parsed: unknown[] = [];
  let cutShort = false;
  for (const [i, line] of all.entries()) {
    if (line.trim() === "") continue;
    try {
      parsed.push(JSON.parse(line));
      lines.push(line);
    } catch {
      if (i === all.length - 1 && !text.endsWith("\n")) {
        cutShort = true;
        continue;
      }
      throw new ResultsFileError(
        `${path}:${i + 1} is not a JSON line; expected a results file written by runStudy`,
      );
    }
  }
  const first = parsed[0] as Partial<ResultsHeader> | undefined;
  const header = first?.format === RESULTS_FORMAT ? first as ResultsHeader : undefined;
  const records = new Map<string, StudyRecord<R>>();
  for (const value of parsed.slice(header ? 1 : 0)) {
    const record = value as StudyRecord<R>;
    if (typeof record?.id === "string" && typeof record.ok === "boolean") {
      records.set(record.id, record);
    }
  }
  return {
    header,
    records,
    lines,
    cutShort,
    missingNewline: text.length > 0 && !text.endsWith("\n"),
  };
}

/** An open results file: the records it held, and appending under the lock. */
export class ResultsFile<R> {
  /** finished records read from the file (the last line of an id wins), by id */
  readonly records: Map<string, StudyRecord<R>>;
  readonly #file: Deno.FsFile;
  readonly #release: () => Promise<void>;

  private constructor(
    records: Map<string, StudyRecord<R>>,
    file: Deno.FsFile,
    release: () => Promise<void>,
  ) {
    this.records = records;
    this.#file = file;
    this.#release = release;
  }

  /**
   * Opens (or creates) a results file for a run described by `description`.
   *
   * @throws {ResultsFileError} when the folder does not exist, the path is a folder, another
   *   process holds the file, it is not a results file, or (with `reuse: "matching"`) its header
   *   names another study, other settings or another model
   *
   * @example
   * ```ts
   * import { ResultsFile } from "./results-file.ts";
   * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
   * const description = { study: "demo", settings: { samples: 4 } };
   * const file = await ResultsFile.open(path, description, "matching");
   * await file.append({ id: "a", ok: true, result: 1 });
   * await file.close();
   * const again = await ResultsFile.open(path, description, "matching");
   * console.assert(again.records.get("a")?.ok === true);
   * await again.close();
   * ```
   */
  static async open<R>(
    path: string,
    description: StudyDescription,
    reuse: "matching" | "any",
  ): Promise<ResultsFile<R>> {
    await checkResultsPath(path);
    const release = await acquireLock(path);
    try {
      const records = await readAndRepair<R>(path, description, reuse);
      const file = await Deno.open(path, { append: true, create: true });
      return new ResultsFile(records, file, release);
    } catch (error) {
      await release();
      throw error;
    }
  }

  /** Appends one record as a JSON line. */
  async append(record: StudyRecord<R>): Promise<void> {
    await writeAll(this.#file, new TextEncoder().encode(JSON.stringify(record) + "\n"));
  }

  /** Flushes the file to disk, closes it and releases the lock. */
  async close(): Promise<void> {
    try {
      await this.#file.syncData();
    } finally {
      this.#file.close();
      await this.#release();
    }
  }
}

/** The path must be a file (or not exist yet) in a folder that exists. */
async function checkResultsPath(path: string): Promise<void> {
  const folder = dirname(path);
  const stat = await Deno.stat(folder).catch(() => undefined);
  if (!stat?.isDirectory) {
    throw new ResultsFileError(
      `the results file ${path} is in ${folder}, which is not an existing folder; create it first`,
    );
  }
  const existing = await Deno.stat(path).catch(() => undefined);
  if (existing?.isDirectory) {
    throw new ResultsFileError(
      `the results file ${path} is a folder; expected a file path such as ${path}/results.jsonl`,
    );
  }
}

/** Reads the records, checks the header against this run, and repairs a crash's leftovers. */
async function readAndRepair<R>(
  path: string,
  description: StudyDescription,
  reuse: "matching" | "any",
): Promise<Map<string, StudyRecord<R>>> {
  const content = await readResults<R>(path);
  if (content.lines.length > 0) checkHeader(path, content.header, description, reuse);
  if (content.lines.length === 0) {
    await writeAtomically(path, JSON.stringify(newHeader(description)) + "\n");
  } else if (content.cutShort) {
    await writeAtomically(path, content.lines.join("\n") + "\n");
  } else if (content.missingNewline) {
    await Deno.writeTextFile(path, "\n", { append: true });
  }
  return content.records;
}

function newHeader(description: StudyDescription): ResultsHeader {
  return {
    format: RESULTS_FORMAT,
    formatVersion: 1,
    infodiff: VERSION,
    created: new Date().toISOString(),
    study: description.study,
    settings: description.settings,
    ...(description.model ? { model: description.model } : {}),
    ...(description.shard ? { shard: description.shard } : {}),
    ...(description.items !== undefined ? { items: description.items } : {}),
  };
}

/** Refuses (or, with reuse "any", warns about) a file written by another study, settings or model. */
function checkHeader(
  path: string,
  header: ResultsHeader | undefined,
  description: StudyDescription,
  reuse: "matching" | "any",
): void {
  const differences = header
    ? headerDifferences(header, description)
    : ["the file has no infodiff header (an older version's file, or not a results file)"];
  if (differences.length === 0) return;
  const list = differences.slice(0, 12).join("; ") +
    (differences.length > 12 ? `; and ${differences.length - 12} more` : "");
  if (reuse === "any") {
    warn(`infodiff: reusing the rows of ${path} although ${list}`);
    return;
  }
  throw new ResultsFileError(
    `${path} was written by another run: ${list}. Use a new results file, or pass ` +
      `reuse: "any" (--reuse any) to reuse its rows on purpose`,
  );
}

/**
 * What differs between a file's header and a run (or another file's header), one phrase each,
 * the two sides named by `labels` (default "there" for the file and "here" for the run).
 *
 * @example
 * ```ts
 * import { headerDifferences } from "./results-file.ts";
 * const header = { format: "infodiff-results", formatVersion: 1, infodiff: "0", created: "",
 *   study: "s", settings: { samples: 2 } } as const;
 * const [d] = headerDifferences(header, { study: "s", settings: { samples: 16 } });
 * console.assert(d === "samples is 2 there, 16 here");
 * ```
 */
export function headerDifferences(
  header: ResultsHeader,
  run: StudyDescription,
  labels: readonly [string, string] = ["there", "here"],
): string[] {
  const [there, here] = labels;
  const out: string[] = [];
  if (header.study !== run.study) {
    out.push(`study is "${header.study}" ${there}, "${run.study}" ${here}`);
  }
  const fileSettings = flatten(header.settings ?? {}), runSettings = flatten(run.settings);
  for (const key of [...new Set([...fileSettings.keys(), ...runSettings.keys()])].sort()) {
    const a = fileSettings.get(key), b = runSettings.get(key);
    if (a !== b) out.push(`${key} is ${a ?? "unset"} ${there}, ${b ?? "unset"} ${here}`);
  }
  const [fileShard, runShard] = [header.shard, run.shard];
  if (
    fileShard && runShard &&
    (fileShard.index !== runShard.index || fileShard.count !== runShard.count)
  ) {
    out.push(
      `the shard is ${fileShard.index}/${fileShard.count} ${there}, ${runShard.index}/${runShard.count} ${here}`,
    );
  }
  const a = header.model, b = run.model;
  if (a && b) {
    if (a.backend !== b.backend || a.sha256 !== b.sha256) {
      out.push(
        `the model is ${a.name} (${a.backend}, sha256 ${a.sha256.slice(0, 12) || "unknown"}) ` +
          `${there}, ${b.name} (${b.backend}, sha256 ${
            b.sha256.slice(0, 12) || "unknown"
          }) ${here}`,
      );
    } else if (!a.sha256) {
      out.push(`the model ${a.name} has no content hash, so it cannot be verified`);
    }
  } else if (a || b) {
    out.push(
      `the model is ${a?.name ?? "unrecorded"} ${there}, ${b?.name ?? "unrecorded"} ${here}`,
    );
  }
  return out;
}

/** Settings as dotted paths → canonical JSON values. */
function flatten(
  value: unknown,
  prefix = "",
  out = new Map<string, string>(),
): Map<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    }
  } else {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/**
 * Writes a file by writing a temporary file beside it, syncing it and renaming it over: a kill at
 * any moment leaves either the old file or the new one, never a truncated one.
 *
 * @example
 * ```ts
 * import { writeAtomically } from "./results-file.ts";
 * const path = await Deno.makeTempFile();
 * await writeAtomically(path, "hello\n");
 * console.assert(await Deno.readTextFile(path) === "hello\n");
 * ```
 */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${Deno.pid}.tmp`;
  const file = await Deno.open(temporary, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, new TextEncoder().encode(text));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(temporary, path);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await file.write(bytes.subarray(written));
  }
}

/** What a lock file holds: who writes the results file, for the messages. */
interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

/**
 * Takes `<path>.lock`: opened (created if missing) and held under an exclusive advisory lock for
 * the whole run. The operating system drops that lock the moment its holder exits, however it
 * exits: a writer killed with `kill -9` releases it at once, before its parent reaps it (while it
 * is a zombie, which still has a pid in /proc). Whether the holder runs is so never guessed from
 * its pid — Deno refuses to read /proc without --allow-all, and pids are reused. The file's text
 * (pid, host, start) only names the holder in messages; text left by a writer that died is taken
 * over with a warning, unless it names another host, whose lock this host may not see (NFS).
 */
async function acquireLock(path: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  const me: LockHolder = { pid: Deno.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(lockPath, { read: true, write: true, create: true });
    } catch (error) {
      throw new ResultsFileError(`cannot create the lock file ${lockPath}`, { cause: error });
    }
    if (!(await file.tryLock(true))) {
      file.close();
      throw lockRefused(path, lockPath, await readLock(lockPath));
    }
    // the last writer removes the file on release: if it did so between our open and our lock,
    // we hold the lock of a removed file while the next writer makes and locks a new one
    if (!(await isSameFile(file, lockPath))) {
      file.close();
      continue;
    }
    const left = await readLock(lockPath);
    if (left && left.host !== me.host) {
      file.close();
      throw lockRefused(path, lockPath, left);
    }
    if (left) {
      warn(
        `infodiff: ${lockPath} was left by process ${left.pid}, which no longer runs; taking it over`,
      );
    }
    await file.truncate(0);
    await writeAll(file, new TextEncoder().encode(JSON.stringify(me)));
    return async () => {
      // removed before the lock is dropped, so the next writer never reads our text as left over
      await Deno.remove(lockPath).catch(() => undefined);
      file.close();
    };
  }
  throw new ResultsFileError(
    `could not take the lock ${lockPath}: other processes kept replacing it; try again`,
  );
}

/** The refusal when another process holds (or may hold) the lock, naming it where known. */
function lockRefused(path: string, lockPath: string, holder?: LockHolder): ResultsFileError {
  const who = holder
    ? `process ${holder.pid} on ${holder.host} (since ${holder.started})`
    : "another process";
  return new ResultsFileError(
    `${path} is being written by ${who}; two writers would mix their rows. Wait for it, use ` +
      `another results file or shard, or delete ${lockPath} if no such process runs`,
  );
}

/** Whether the open `file` is still the one at `path` (same device and inode). */
async function isSameFile(file: Deno.FsFile, path: string): Promise<boolean> {
  try {
    const [open, named] = [await file.stat(), await Deno.stat(path)];
    return open.dev === named.dev && open.ino === named.ino;
  } catch {
    return false;
  }
}

async function readLock(lockPath: string): Promise<LockHolder | undefined> {
  try {
    const holder = JSON.parse(await Deno.readTextFile(lockPath));
    return typeof holder?.pid === "number" ? holder : undefined;
  } catch {
    return undefined;
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown host";
  }
}
