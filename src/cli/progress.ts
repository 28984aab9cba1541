/**
 * Progress on stderr, as a person reading it wants it: on a terminal one live bar with rate and
 * ETA redrawn in place; in a log (not a terminal) one line every `interval` seconds and a last one
 * at the end; nothing with `quiet`. The unit says what is counted (draws for a query, items for a
 * study).
 *
 * @module
 */

/** How progress is shown. */
export interface ProgressOptions {
  /** what is counted, e.g. "draws" or "items" */
  readonly unit: string;
  /** a terminal: redraw one bar (default: whether stderr is a terminal) */
  readonly terminal?: boolean;
  /** seconds between lines when not on a terminal (default 10) */
  readonly interval?: number;
  /** show nothing */
  readonly quiet?: boolean;
  /** where text goes (default stderr) */
  readonly write?: (text: string) => void;
  /** the clock, in milliseconds (default performance.now) */
  readonly now?: () => number;
}

/** Receives `(done, total)` updates; `finish()` ends the display. */
export interface ProgressReporter {
  /** reports that `done` of `total` are finished */
  update(done: number, total: number): void;
  /** ends the display (a newline after a bar) */
  finish(): void;
}

const BAR_WIDTH = 30;

/**
 * A progress reporter for the command line.
 *
 * @example
 * ```ts
 * import { progressReporter } from "./progress.ts";
 * const out: string[] = [];
 * let t = 0;
 * const p = progressReporter({ unit: "draws", terminal: false, interval: 10, write: (s) => out.push(s), now: () => t });
 * p.update(10, 100); t = 5000; p.update(50, 100); t = 11000; p.update(60, 100); p.update(100, 100);
 * // a line at the start, one after the 10 s interval, and the last one
 * console.assert(out.length === 3 && out[1].startsWith("60/100") && out[2].startsWith("100/100 draws"));
 * ```
 */
export function progressReporter(options: ProgressOptions): ProgressReporter {
  const write = options.write ??
    ((text: string) => Deno.stderr.writeSync(new TextEncoder().encode(text)));
  const now = options.now ?? (() => performance.now());
  const terminal = options.terminal ?? Deno.stderr.isTerminal();
  const interval = (options.interval ?? 10) * 1000;
  const started = now();
  let last = -Infinity, drawn = false;
  const describe = (done: number, total: number) => {
    const seconds = (now() - started) / 1000;
    const rate = done / Math.max(seconds, 1e-9);
    const eta = done > 0 && done < total ? ` · ETA ${formatSeconds((total - done) / rate)}` : "";
    const speed = done > 0 ? ` · ${rate.toFixed(rate < 10 ? 2 : 1)} ${options.unit}/s` : "";
    return `${done}/${total} ${options.unit}${speed}${eta}`;
  };
  return {
    update(done, total) {
      if (options.quiet) return;
      if (terminal) {
        const filled = Math.round((BAR_WIDTH * done) / Math.max(total, 1));
        const bar = "█".repeat(filled) + "░".repeat(BAR_WIDTH - filled);
        write(`\r\x1b[2K${bar} ${describe(done, total)}`);
        drawn = true;
        return;
      }
      const t = now();
      if (done < total && t - last < interval) return;
      last = t;
      write(describe(done, total) + "\n");
    },
    finish() {
      if (drawn) write("\n");
      drawn = false;
    },
  };
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
