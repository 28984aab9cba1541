/**
 * Packing several callers' noise predictions into one model call. A study keeps a few rows in
 * flight; each row's estimator asks for its own blocks, and this wrapper gathers whatever the rows
 * have asked for (until a call is full, or until every row that can run has asked: the next turn
 * of the event loop) into calls of up to `batchSize` items. Each item's prediction depends only on
 * that item, so the numbers are those of row-by-row evaluation.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { InvalidArgumentError, ModelRuntimeError } from "../errors.ts";
import type { Denoiser, NoiseBatch } from "./denoiser.ts";
import { shapeSize, withMembers } from "./denoiser.ts";

/** Counts of a packed model's calls, for benchmarks and tests. */
export interface PackingStats {
  /** predictNoise requests the callers made */
  readonly requests: number;
  /** calls made to the wrapped model */
  readonly calls: number;
  /** items evaluated in all */
  readonly items: number;
}

/** A denoiser whose `predictNoise` calls are packed, and the counts of what it did. */
export interface PackedDenoiser extends Denoiser {
  /** requests, calls and items so far */
  packingStats(): PackingStats;
}

interface Request {
  readonly batch: NoiseBatch;
  readonly size: number;
  /** items already handed to a call */
  sent: number;
  /** items whose predictions came back */
  done: number;
  output?: Float32Array;
  readonly resolve: (values: Float32Array) => void;
  readonly reject: (error: unknown) => void;
  failed: boolean;
}

/** One piece of a request in a call: `count` items from item `from`. */
interface Piece {
  readonly request: Request;
  readonly from: number;
  readonly count: number;
}

/**
 * Wraps `model` so that concurrent `predictNoise` requests share calls of up to `batchSize` items
 * (default `model.batchSize`). One call runs at a time; requests that arrive meanwhile wait and go
 * together. A call that fails rejects every request it carried. Everything else (encode, prepare,
 * attention, identity…) is the model's own. Scalar-timestep models (`sharedLogSnr`) evaluate one
 * noise level per call, so their requests are passed through unchanged.
 *
 * @example
 * ```ts
 * import { packCalls } from "./packed-calls.ts";
 * import { mixtureDenoiser } from "./mixture.ts";
 * const model = mixtureDenoiser({ shape: [1, 1, 2], components: [{ words: ["a"], mean: [1, 0], variance: 0.5 }] });
 * const packed = packCalls(model, 4);
 * const empty = await model.encode("");
 * const one = { noisy: new Float32Array(4), logSnr: new Float64Array(2), conditions: [empty, empty] };
 * const [a, b] = await Promise.all([packed.predictNoise(one), packed.predictNoise(one)]);
 * console.assert(a.length === 4 && b.length === 4 && packed.packingStats().calls === 1);
 * ```
 */
export function packCalls(model: Denoiser, batchSize: number = model.batchSize): PackedDenoiser {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const d = shapeSize(model.shape);
  const queue: Request[] = [];
  const stats = { requests: 0, calls: 0, items: 0 };
  let pending = 0, running = false, drainScheduled = false;

  const unsent = () => queue.filter((r) => r.sent < r.size);

  /** Starts the next call if none runs: a full one now, or whatever waits once the loop drains. */
  const pump = (drained: boolean) => {
    if (running || pending === 0) return;
    if (pending < batchSize && !drained) {
      if (!drainScheduled) {
        drainScheduled = true;
        setImmediate(() => {
          drainScheduled = false;
          pump(true);
        });
      }
      return;
    }
    void runCall(takePieces());
  };

  const takePieces = (): Piece[] => {
    const pieces: Piece[] = [];
    let room = batchSize;
    for (const request of unsent()) {
      if (room === 0) break;
      const count = Math.min(room, request.size - request.sent);
      pieces.push({ request, from: request.sent, count });
      request.sent += count;
      room -= count;
      pending -= count;
    }
    return pieces;
  };

  const runCall = async (pieces: Piece[]) => {
    running = true;
    const size = pieces.reduce((n, p) => n + p.count, 0);
    try {
      const whole = pieces.length === 1 && pieces[0].count === pieces[0].request.size;
      const batch = whole ? pieces[0].request.batch : joinPieces(pieces, size, d);
      stats.calls++;
      stats.items += size;
      const out = await model.predictNoise(batch);
      if (out.length !== size * d) {
        throw new ModelRuntimeError(
          `${model.name}: predictNoise returned ${out.length} values for ${size} items, expected ${
            size * d
          }`,
        );
      }
      if (whole) deliver(pieces[0], out, true);
      else {
        let offset = 0;
        for (const piece of pieces) {
          deliver(piece, out.subarray(offset * d, (offset + piece.count) * d), false);
          offset += piece.count;
        }
      }
    } catch (error) {
      for (const { request } of pieces) fail(request, error);
    } finally {
      running = false;
      pump(false);
    }
  };

  const deliver = (piece: Piece, values: Float32Array, whole: boolean) => {
    const request = piece.request;
    if (request.failed) return;
    if (whole) request.output = values;
    else {
      request.output ??= new Float32Array(request.size * d);
      request.output.set(values, piece.from * d);
    }
    request.done += piece.count;
    if (request.done === request.size) {
      queue.splice(queue.indexOf(request), 1);
      request.resolve(request.output);
    }
  };

  const fail = (request: Request, error: unknown) => {
    if (request.failed) return;
    request.failed = true;
    pending -= request.size - request.sent; // its unsent items are dropped with it
    request.sent = request.size;
    queue.splice(queue.indexOf(request), 1);
    request.reject(error);
  };

  const predictNoise = (batch: NoiseBatch): Promise<Float32Array> => {
    stats.requests++;
    const size = batch.logSnr.length;
    if (model.sharedLogSnr || size === 0) {
      stats.calls++;
      stats.items += size;
      return model.predictNoise(batch);
    }
    if (batch.noisy.length !== size * d || batch.conditions.length !== size) {
      return Promise.reject(
        new InvalidArgumentError(
          `predictNoise: ${size} log-SNRs, ${batch.conditions.length} conditions and ${batch.noisy.length} values; expected one condition and ${d} values per item`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      queue.push({ batch, size, sent: 0, done: 0, resolve, reject, failed: false });
      pending += size;
      pump(false);
    });
  };

  return withMembers(model, {
    predictNoise,
    packingStats: (): PackingStats => ({ ...stats }),
  }) as unknown as PackedDenoiser;
}

/** The items of several requests, copied into one batch in piece order. */
function joinPieces(pieces: readonly Piece[], size: number, d: number): NoiseBatch {
  const noisy = new Float32Array(size * d);
  const logSnr = new Float64Array(size);
  const conditions = [];
  let at = 0;
  for (const { request, from, count } of pieces) {
    noisy.set(request.batch.noisy.subarray(from * d, (from + count) * d), at * d);
    logSnr.set(request.batch.logSnr.subarray(from, from + count), at);
    conditions.push(...request.batch.conditions.slice(from, from + count));
    at += count;
  }
  // the backend may skip its finiteness pass only when every request checks its own values
  const finiteChecked = pieces.every(({ request }) => request.batch.finiteChecked === true);
  return { noisy, logSnr, conditions, finiteChecked };
}
