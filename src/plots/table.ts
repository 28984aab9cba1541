/**
 * {@link resultTable}: rows of numbers with their standard errors (and small pictures) as a table
 * that displays itself in Jupyter as aligned `text/plain` and as `text/html`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { InvalidArgumentError } from "../errors.ts";
import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import { Figure } from "./figure.ts";
import type { NatsWithError } from "../studies/intervention-result.ts";
import type { MeanWithError } from "../numerics/statistics.ts";

/**
 * What a table cell may hold: text (lines joined by "; " in plain text, `<br>` in HTML), a number
 * (integers printed as such), an estimate or a mean with its standard error (printed `value ± se`),
 * or a picture.
 */
export type TableCell =
  | string
  | number
  | NatsWithError
  | MeanWithError
  | Figure
  | null
  | undefined;

/** Options of {@link resultTable}. */
export interface ResultTableOptions {
  /** caption above the table */
  readonly title?: string;
  /** digits after the decimal point for numbers and estimates (default 3) */
  readonly digits?: number;
}

/**
 * A rendered table: columns, rows of cells, and a caption.
 *
 * @example
 * ```ts
 * import { resultTable } from "./table.ts";
 * const table = resultTable([{ word: "red", information: { nats: 0.8, se: 0.2 } }]);
 * console.assert(String(table).includes("0.800 ± 0.200"));
 * ```
 */
export class Table {
  /** Column names. */
  readonly columns: readonly string[];
  /** Rows of cells, in column order. */
  readonly rows: readonly (readonly TableCell[])[];
  /** Caption (may be empty). */
  readonly title: string;
  readonly #digits: number;

  /** Builds a table; prefer {@link resultTable}. */
  constructor(
    columns: readonly string[],
    rows: readonly (readonly TableCell[])[],
    options: ResultTableOptions = {},
  ) {
    const digits = options.digits ?? 3;
    if (!Number.isInteger(digits) || digits < 0 || digits > 12) {
      throw new InvalidArgumentError(`table digits must be an integer in [0, 12], got ${digits}`);
    }
    this.columns = columns;
    this.rows = rows;
    this.title = options.title ?? "";
    this.#digits = digits;
  }

  /**
   * Aligned plain text (pictures as `[image W×H]`).
   *
   * @example
   * ```ts
   * import { resultTable } from "./table.ts";
   * console.assert(resultTable([{ a: 1 }, { a: 22 }]).toString().split("\n").length === 4);
   * ```
   */
  toString(): string {
    const cells = [this.columns, ...this.rows.map((row) => row.map((c) => this.#plain(c)))];
    const widths = this.columns.map((_, j) => Math.max(...cells.map((row) => row[j].length)));
    const line = (row: readonly string[]) =>
      row.map((c, j) => c.padEnd(widths[j])).join("  ").trimEnd();
    return [
      ...(this.title ? [this.title] : []),
      line(cells[0]),
      widths.map((w) => "-".repeat(w)).join("  "),
      ...cells.slice(1).map(line),
    ].join("\n");
  }

  /**
   * Jupyter rich display: `text/plain` and `text/html`.
   *
   * @example
   * ```ts
   * import { resultTable } from "./table.ts";
   * import { JUPYTER_DISPLAY } from "../jupyter.ts";
   * console.assert(resultTable([{ a: "<b>" }])[JUPYTER_DISPLAY]()["text/html"].includes("&lt;b&gt;"));
   * ```
   */
  [JUPYTER_DISPLAY](): MimeBundle {
    const head = this.columns.map((c) => `<th style="text-align:left">${escapeHtml(c)}</th>`).join(
      "",
    );
    const body = this.rows.map((row) =>
      `<tr>${row.map((c) => `<td style="text-align:left">${this.#html(c)}</td>`).join("")}</tr>`
    ).join("");
    const caption = this.title ? `<caption>${escapeHtml(this.title)}</caption>` : "";
    return {
      "text/plain": this.toString(),
      "text/html": `<table>${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`,
    };
  }

  #plain(cell: TableCell): string {
    if (cell === null || cell === undefined) return "—";
    if (typeof cell === "string") return cell.replaceAll("\n", "; ");
    if (typeof cell === "number") {
      return Number.isInteger(cell) && Math.abs(cell) < 1e15
        ? String(cell)
        : formatNumber(cell, this.#digits);
    }
    if (cell instanceof Figure) return `[image ${cell.width}×${cell.height}]`;
    const value = "nats" in cell ? cell.nats : cell.mean;
    return `${formatNumber(value, this.#digits)} ± ${formatNumber(cell.se, this.#digits)}`;
  }

  #html(cell: TableCell): string {
    if (cell instanceof Figure) {
      return `<img alt="${escapeHtml(cell.description)}" width="${cell.width}" ` +
        `src="data:image/png;base64,${Buffer.from(cell.png).toString("base64")}">`;
    }
    if (typeof cell === "string") return escapeHtml(cell).replaceAll("\n", "<br>");
    return escapeHtml(this.#plain(cell));
  }
}

function formatNumber(value: number, digits: number): string {
  if (Number.isNaN(value)) return "—";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  return value.toFixed(digits);
}

/**
 * A table from plain row objects: the columns are the keys, in the order they first appear.
 *
 * @throws {InvalidArgumentError} for no rows
 *
 * @example
 * ```ts
 * import { resultTable } from "./table.ts";
 * const table = resultTable([
 *   { method: "information", mIoU: { nats: 0.41, se: 0.03 } },
 *   { method: "whole image", mIoU: { nats: 0.09, se: 0.01 } },
 * ], { title: "localization", digits: 2 });
 * console.assert(table.toString().includes("0.41 ± 0.03"));
 * ```
 */
export function resultTable(
  rows: readonly Readonly<Record<string, TableCell>>[],
  options: ResultTableOptions = {},
): Table {
  if (rows.length === 0) throw new InvalidArgumentError("a result table needs at least one row");
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return new Table(columns, rows.map((row) => columns.map((c) => row[c])), options);
}
