/**
 * Result objects of the estimators. Each has `toJSON()` for saving and renders itself in Jupyter.
 *
 * @module
 */
import { PromptError } from "../errors.ts";
import type { Heatmap } from "../images/heatmap.ts";
import type { Estimate } from "./estimate.ts";
import type { Provenance } from "./provenance.ts";

import { displayBundle, escapeHtml, JUPYTER_DISPLAY } from "../jupyter.ts";

/**
 * i(x; prompt) with its per-pixel decomposition.
 *
 * @example
 * ```ts
 * import { PerPixelResult } from "./results.ts";
 * import { Estimate } from "./estimate.ts";
 * import { Heatmap } from "../images/heatmap.ts";
 * const r = new PerPixelResult(new Estimate(1, 0.1, 10), new Heatmap(1, 1, new Float32Array([1])));
 * console.assert(r.toJSON().estimate.nats === 1);
 * ```
 */
export class PerPixelResult {
  /** How the result was made, when it came from a query (see `withProvenance`). */
  declare readonly provenance?: Provenance;

  /**
   * Creates the result.
   * @param estimate the image-level information
   * @param map its per-pixel decomposition (sums to the estimate)
   */
  constructor(readonly estimate: Estimate, readonly map: Heatmap) {}

  /** Plain data. */
  toJSON(): {
    estimate: ReturnType<Estimate["toJSON"]>;
    map: ReturnType<Heatmap["toJSON"]>;
    provenance?: Provenance;
  } {
    const plain = { estimate: this.estimate.toJSON(), map: this.map.toJSON() };
    return this.provenance ? { ...plain, provenance: this.provenance } : plain;
  }

  /** Shows the map and the estimate in Jupyter. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    return { ...displayBundle(this.map), "text/plain": this.estimate.toString() };
  }
}

/** The information one word of a prompt adds, given the rest of the prompt. */
export interface TokenInformation {
  /** the word, lower-cased */
  readonly word: string;
  /** position of the word among the prompt's words (0-based) */
  readonly index: number;
  /** the prompt without this word (the condition it is compared against) */
  readonly context: string;
  /** i(x; word | context) */
  readonly estimate: Estimate;
  /** per-pixel decomposition of the estimate */
  readonly map: Heatmap;
  /**
   * true when the word lies past the text encoder's context, so the model never sees it: it has
   * no estimate (NaN), which is not the same as carrying no information; its `map` is all zeros
   * and means nothing (charts, the command line and `toJSON` leave it out)
   */
  readonly truncated?: boolean;
}

/**
 * The per-word decomposition of a prompt's information about an image.
 *
 * @example
 * ```ts
 * import { PerTokenResult } from "./results.ts";
 * import { Estimate } from "./estimate.ts";
 * import { Heatmap } from "../images/heatmap.ts";
 * const map = new Heatmap(1, 1, new Float32Array([0.2]));
 * const r = new PerTokenResult("red", new Estimate(0.2, 0.01, 10), [
 *   { word: "red", index: 0, context: "", estimate: new Estimate(0.2, 0.01, 10), map },
 * ]);
 * console.assert(r.token("red").estimate.nats === 0.2);
 * ```
 */
export class PerTokenResult {
  /** How the result was made, when it came from a query (see `withProvenance`). */
  declare readonly provenance?: Provenance;

  /**
   * Creates the result.
   * @param prompt the prompt
   * @param total i(x; prompt) against the null prompt
   * @param tokens one entry per word of the prompt, in order
   */
  constructor(
    readonly prompt: string,
    readonly total: Estimate,
    readonly tokens: readonly TokenInformation[],
  ) {}

  /** The first token entry for a word (case-insensitive); throws if the word is absent. */
  token(word: string): TokenInformation {
    const found = this.tokens.find((t) => t.word === word.toLowerCase());
    if (!found) {
      throw new PromptError(
        `word "${word}" is not in the prompt "${this.prompt}"; words: ${
          this.tokens.map((t) => t.word).join(", ")
        }`,
      );
    }
    return found;
  }

  /** Rows for tables and charts: word, nats, se. */
  rows(): { word: string; index: number; nats: number; se: number }[] {
    return this.tokens.map((t) => ({
      word: t.word,
      index: t.index,
      nats: t.estimate.nats,
      se: t.estimate.se,
    }));
  }

  /** Plain data (maps included). */
  toJSON(): Record<string, unknown> {
    return {
      prompt: this.prompt,
      total: this.total.toJSON(),
      tokens: this.tokens.map((t) => ({
        word: t.word,
        index: t.index,
        context: t.context,
        estimate: t.estimate.toJSON(),
        ...(t.truncated ? { map: null, truncated: true } : { map: t.map.toJSON() }),
      })),
      ...(this.provenance ? { provenance: this.provenance } : {}),
    };
  }

  /** A fixed-width text table: word, nats, ± se. */
  toString(): string {
    const width = Math.max(4, ...this.tokens.map((t) => t.word.length));
    const line = (word: string, e: Estimate) =>
      `${word.padEnd(width)}  ${e.nats.toFixed(4).padStart(9)}  ${e.seText()}`;
    return [
      `prompt: "${this.prompt}" (${this.total.samples} draws)`,
      `${"word".padEnd(width)}  ${"nats".padStart(9)}  ± se`,
      ...this.tokens.map((t) =>
        t.truncated
          ? `${t.word.padEnd(width)}  ${"—".padStart(9)}  past the text encoder's context`
          : line(t.word, t.estimate)
      ),
      line("(all)", this.total),
    ].join("\n");
  }

  /** Shows an HTML table with a bar per word in Jupyter. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    const max = Math.max(
      1e-12,
      ...this.tokens.filter((t) => !t.truncated).map((t) => Math.abs(t.estimate.nats)),
    );
    const rows = this.tokens.map((t) =>
      t.truncated
        ? `<tr><td>${escapeHtml(t.word)}</td><td colspan="3"><i>past the text encoder's ` +
          `context: no estimate</i></td></tr>`
        : `<tr><td>${escapeHtml(t.word)}</td><td style="text-align:right">${
          t.estimate.nats.toFixed(4)
        }</td><td>${t.estimate.seText()}</td><td><div style="background:#4c78a8;height:10px;width:${
          Math.round((200 * Math.max(0, t.estimate.nats)) / max)
        }px"></div></td></tr>`
    ).join("");
    const html = `<table><caption>${escapeHtml(this.prompt)} — total ${
      escapeHtml(this.total.toString())
    }</caption><tr><th>word</th><th>nats</th><th>se</th><th></th></tr>${rows}</table>`;
    return { "text/html": html, "text/plain": this.toString() };
  }
}

/**
 * What a {@link LogLikelihood} measures: the model's own data space (latents, for Stable
 * Diffusion), a continuous density, and the log-SNR interval the integral covers.
 */
export interface LikelihoodMeasure {
  /** "pixels" for pixel-space models, "latent" for models that decode (a VAE) */
  readonly space: "pixels" | "latent";
  /** the sampled log-SNR interval ½∫(mmse − d·σ)dα runs over; outside it the integrand is dropped */
  readonly logSnr: { readonly min: number; readonly max: number };
}

/**
 * −log p(x | prompt) in nats and bits per dimension — of a CONTINUOUS density of the model's own
 * data (pixels in [−1, 1], or SD's latents), with the integral truncated to the sampled log-SNR
 * interval. It is not ITD's discrete bits/dim of 8-bit images (which adds −log₂ of the
 * quantisation bin, uses a Gaussian base with the data covariance and clamps the MMSE gap;
 * REFERENCE §12): for pixel data in [−1, 1] that number is about 7 bits higher. `toString` says
 * which measure a value is.
 *
 * @example
 * ```ts
 * import { LogLikelihood } from "./results.ts";
 * const r = new LogLikelihood(10, 0.5, 100, 4, { space: "pixels", logSnr: { min: -5, max: 7 } });
 * console.assert(Math.abs(r.bitsPerDim - 10 / 4 / Math.LN2) < 1e-12);
 * console.assert(r.toString().includes("continuous density of pixels, α ∈ [-5, 7]"));
 * ```
 */
export class LogLikelihood {
  /** How the result was made, when it came from a query (see `withProvenance`). */
  declare readonly provenance?: Provenance;

  /**
   * Creates the result.
   * @param nats −log p(x | prompt) in nats
   * @param se its standard error in nats
   * @param samples noise draws
   * @param dimensions number of data dimensions d
   * @param measure the data space and the log-SNR interval of the integral
   */
  constructor(
    readonly nats: number,
    readonly se: number,
    readonly samples: number,
    readonly dimensions: number,
    readonly measure: LikelihoodMeasure,
  ) {}

  /** −log₂ p(x | prompt) / d of the continuous density (see the class documentation) */
  get bitsPerDim(): number {
    return this.nats / this.dimensions / Math.LN2;
  }

  /** standard error of {@link LogLikelihood.bitsPerDim} */
  get seBitsPerDim(): number {
    return this.se / this.dimensions / Math.LN2;
  }

  /** Plain data. */
  toJSON(): {
    nats: number;
    bitsPerDim: number;
    se: number;
    samples: number;
    measure: LikelihoodMeasure;
    provenance?: Provenance;
  } {
    const plain = {
      nats: this.nats,
      bitsPerDim: this.bitsPerDim,
      se: this.se,
      samples: this.samples,
      measure: this.measure,
    };
    return this.provenance ? { ...plain, provenance: this.provenance } : plain;
  }

  /** `12.3 ± 0.4 nats (0.512 bits/dim, n=100; continuous density of pixels, α ∈ [-5, 7])` */
  toString(): string {
    const { space, logSnr } = this.measure;
    const interval = `[${+logSnr.min.toFixed(3)}, ${+logSnr.max.toFixed(3)}]`;
    return `${this.nats.toFixed(3)} ± ${this.se.toFixed(3)} nats (${
      this.bitsPerDim.toFixed(4)
    } bits/dim, n=${this.samples}; continuous density of ${space}, α ∈ ${interval})`;
  }

  /** Shows the value as text in Jupyter. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}
