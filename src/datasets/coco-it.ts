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
import { removeWord } from "../text/prompt.ts";

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
 * Makes a row, computing the context with word-bounded removal (first occurrence of the word).
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
  const context = removeWord(caption, word);
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
 * Reads a `.jsonl` COCO-IT table; relative image paths are resolved against `imageRoot`
 * (default: the table's folder).
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
  return parseCocoIt(text, path).map((row) =>
    isAbsolute(row.image) ? row : { ...row, image: join(root, row.image) }
  );
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
