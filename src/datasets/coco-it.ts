/**
 * COCO-IT style localization tables: one row per (image, caption, object word), with the context
 * (the caption without that word, removed at word boundaries) whose information the word adds.
 *
 * Format: JSON Lines (`.jsonl`), one JSON object per line, UTF-8, "\n" line ends:
 * `{"image": "images/1.png", "caption": "...", "word": "circle", "category": "circle",
 *   "context": "...", "image_id": 1}` — `image_id` is optional and links the row to a COCO
 * instances file (whose masks of `category` in that image are the ground truth). JSON Lines keeps
 * captions with commas and quotes intact and streams row by row.
 *
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { DatasetError } from "../errors.ts";
import { removePhrase, tidy } from "../text/prompt.ts";
import { parse as parseCsv } from "npm:csv-parse@7.0.3/sync";

/** One COCO-IT row. */
export interface CocoItRow {
  /** image file path (relative to the table's folder in the file; resolved by {@link readCocoIt}) */
  readonly image: string;
  /** the caption */
  readonly caption: string;
  /** the object word whose map is wanted (a word of the caption) */
  readonly word: string;
  /** the COCO category whose masks are the ground truth */
  readonly category: string;
  /** the caption with the word removed at word boundaries */
  readonly context: string;
  /** COCO image id, when the table comes with an instances file */
  readonly image_id?: number;
}

/**
 * Makes a row, computing the context with word-bounded removal (every occurrence of the word).
 *
 * @example
 * ```ts
 * import { cocoItRow } from "./coco-it.ts";
 * const row = cocoItRow("1.png", "a red circle left of a reddish square", "red", "circle");
 * console.assert(row.context === "a circle left of a reddish square");
 * ```
 */
export function cocoItRow(
  image: string,
  caption: string,
  word: string,
  category: string,
  imageId?: number,
): CocoItRow {
  const context = removePhrase(caption, word);
  const row = { image, caption, word, category, context };
  return imageId === undefined ? row : { ...row, image_id: imageId };
}

/**
 * Parses JSON Lines text into rows (blank lines skipped). Throws {@link DatasetError} naming the
 * line of a malformed row; whether the word really is in the caption is left to the study, which
 * reports and skips such rows.
 *
 * @example
 * ```ts
 * import { parseCocoIt } from "./coco-it.ts";
 * const rows = parseCocoIt(
 *   '{"image":"1.png","caption":"a red circle","word":"red","category":"circle","context":"a circle"}\n',
 * );
 * console.assert(rows.length === 1 && rows[0].context === "a circle");
 * ```
 */
export function parseCocoIt(text: string, source = "COCO-IT table"): CocoItRow[] {
  const rows: CocoItRow[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `${source}, line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new DatasetError(`${where} is not valid JSON`, { cause: e });
    }
    rows.push(checkRow(value, where));
  }
  return rows;
}

/**
 * Rows → JSON Lines text (one object per line, trailing newline).
 *
 * @example
 * ```ts
 * import { cocoItRow, formatCocoIt, parseCocoIt } from "./coco-it.ts";
 * const rows = [cocoItRow("1.png", "a red circle", "circle", "circle", 1)];
 * console.assert(JSON.stringify(parseCocoIt(formatCocoIt(rows))) === JSON.stringify(rows));
 * ```
 */
export function formatCocoIt(rows: readonly CocoItRow[]): string {
  return rows.map((row, i) => JSON.stringify(checkRow(row, `row ${i}`)) + "\n").join("");
}

/**
 * Reads a COCO-IT table: JSON Lines (`.jsonl`, as {@link writeCocoIt} writes), or the reference's
 * own `COCO-IT.csv` (`.csv`, see {@link parseCocoItCsv}). Relative image paths are resolved
 * against `imageRoot` (default: the table's folder; for the CSV, the folder of COCO's val2017
 * images, whose files are named by the zero-padded image id).
 *
 * @example
 * ```ts
 * import { cocoItRow, readCocoIt, writeCocoIt } from "./coco-it.ts";
 * const dir = await Deno.makeTempDir();
 * await writeCocoIt(`${dir}/coco_it.jsonl`, [cocoItRow("images/1.png", "a red circle", "red", "circle")]);
 * const [row] = await readCocoIt(`${dir}/coco_it.jsonl`);
 * console.assert(row.image === `${dir}/images/1.png`);
 * ```
 */
export async function readCocoIt(
  path: string,
  options: { readonly imageRoot?: string } = {},
): Promise<CocoItRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new DatasetError(`cannot read COCO-IT table ${path}`, { cause: e });
  }
  const root = options.imageRoot ?? dirname(path);
  const rows = path.toLowerCase().endsWith(".csv")
    ? parseCocoItCsv(text, path).rows
    : parseCocoIt(text, path);
  return rows.map((row) => isAbsolute(row.image) ? row : { ...row, image: join(root, row.image) });
}

/** A row of the reference's COCO-IT.csv whose context infodiff computes differently. */
export interface ChangedContext {
  /** 1-based data row of the CSV */
  readonly row: number;
  /** the caption */
  readonly caption: string;
  /** the object word or phrase */
  readonly word: string;
  /** the reference's context (`caption.replace(obj, "")`, a substring replace) */
  readonly reference: string;
  /** infodiff's: every occurrence removed at word boundaries */
  readonly context: string;
  /**
   * "substring": the reference also cut words containing the object ("a bedroom" → "a room");
   * "case": the reference kept a capitalised occurrence ("Toilet …"), which CLIP reads as the same
   * word, so it is removed here too
   */
  readonly why: "substring" | "case";
}

const escapeRegExp = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const CSV_COLUMNS = ["Image ID", "Label", "correct_obj+context", "context", "correct_obj"];

/**
 * Parses the reference's `COCO-IT.csv` (kxh001/Info-Decomp `datasets/coco/COCO-IT.csv`, columns
 * `Image ID, Label, correct_obj+context, context, correct_obj`). The object (`correct_obj`, the
 * category name or its plural, possibly a phrase such as "dining table") is the row's word, the
 * Label its category, and the image `<12-digit id>.jpg` (COCO val2017). The context is recomputed
 * by removing every occurrence of the object at word boundaries: the reference's substring
 * replace also cut words that contain the object ("a bedroom" → "a room"); those rows are listed
 * in `changed` with both contexts.
 *
 * @example
 * ```ts
 * import { parseCocoItCsv } from "./coco-it.ts";
 * const csv = "Image ID,Label,correct_obj+context,context,correct_obj\n" +
 *   '42,bed,"A bed, in a bedroom","A , in a room",bed\n';
 * const { rows, changed } = parseCocoItCsv(csv);
 * console.assert(rows[0].context === "A, in a bedroom" && rows[0].image === "000000000042.jpg");
 * console.assert(changed[0].reference === "A , in a room");
 * ```
 */
export function parseCocoItCsv(
  text: string,
  source = "COCO-IT.csv",
): { rows: CocoItRow[]; changed: ChangedContext[] } {
  let records: string[][];
  try {
    records = parseCsv(text, { relax_column_count: false, skip_empty_lines: true });
  } catch (e) {
    throw new DatasetError(`${source} is not a readable CSV file`, { cause: e });
  }
  const [header, ...data] = records;
  if (!header || CSV_COLUMNS.some((c, i) => header[i]?.trim() !== c)) {
    throw new DatasetError(
      `${source}: the header is ${JSON.stringify(header)}; expected the reference's columns ` +
        CSV_COLUMNS.join(", "),
    );
  }
  const rows: CocoItRow[] = [], changed: ChangedContext[] = [];
  data.forEach((record, index) => {
    const [id, label, caption, reference, word] = record;
    const where = `${source}, data row ${index + 1}`;
    if (!/^\d+$/.test(id.trim())) {
      throw new DatasetError(`${where}: Image ID is "${id}"; expected a COCO image id`);
    }
    let context: string;
    try {
      context = removePhrase(caption, word);
    } catch (e) {
      throw new DatasetError(`${where}: the object "${word}" is not in "${caption}"`, { cause: e });
    }
    const imageId = Number(id);
    rows.push({
      image: `${id.trim().padStart(12, "0")}.jpg`,
      caption,
      word,
      category: label,
      context,
      image_id: imageId,
    });
    if (tidy(reference) !== context) {
      // the reference's removal, but at word boundaries: equal to its context → only case differs
      const bounded = caption.replace(new RegExp(`\\b${escapeRegExp(word)}\\b`, "g"), "");
      const why = tidy(bounded) === tidy(reference) ? "case" : "substring";
      changed.push({ row: index + 1, caption, word, reference, context, why });
    }
  });
  return { rows, changed };
}

/**
 * Writes rows as JSON Lines.
 *
 * @example
 * ```ts
 * import { cocoItRow, writeCocoIt } from "./coco-it.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await writeCocoIt(path, [cocoItRow("1.png", "a red circle", "red", "circle")]);
 * ```
 */
export async function writeCocoIt(path: string, rows: readonly CocoItRow[]): Promise<void> {
  await Deno.writeTextFile(path, formatCocoIt(rows));
}

function checkRow(value: unknown, where: string): CocoItRow {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DatasetError(`${where} is ${JSON.stringify(value)}; expected an object`);
  }
  const r = value as Record<string, unknown>;
  for (const key of ["image", "caption", "word", "category", "context"]) {
    if (typeof r[key] !== "string") {
      throw new DatasetError(
        `${where}: "${key}" is ${JSON.stringify(r[key]) ?? "missing"}; expected a string ` +
          `(fields: image, caption, word, category, context[, image_id])`,
      );
    }
  }
  if (r.image_id !== undefined && !Number.isInteger(r.image_id)) {
    throw new DatasetError(
      `${where}: "image_id" is ${JSON.stringify(r.image_id)}; expected an integer`,
    );
  }
  const row = {
    image: r.image as string,
    caption: r.caption as string,
    word: r.word as string,
    category: r.category as string,
    context: r.context as string,
  };
  return r.image_id === undefined ? row : { ...row, image_id: r.image_id as number };
}
