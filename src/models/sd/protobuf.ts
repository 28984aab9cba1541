/**
 * The protobuf wire format, read without a schema: the fields of one message as byte spans. ONNX
 * graphs are read this way where decoding the whole model is not needed (which external-data
 * files a graph names) or must not re-serialise it (the attention tap appends outputs to the
 * original bytes).
 *
 * @module
 */
import { ModelLoadError } from "../../errors.ts";

/** One field of a message: its number, wire type and byte span (payload from `payloadStart`). */
export interface ProtobufField {
  /** the field number */
  readonly number: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
  readonly wireType: number;
  /** offset of the field's tag */
  readonly start: number;
  /** offset of its payload (after the length, for length-delimited fields) */
  readonly payloadStart: number;
  /** offset just past the field */
  readonly end: number;
}

/** Wire type of messages, strings and bytes. */
export const LENGTH_DELIMITED = 2;

/**
 * The fields of the message in `bytes[start, end)`, in order.
 *
 * @throws {ModelLoadError} for a truncated or malformed message
 *
 * @example
 * ```ts
 * import { protobufFields } from "./protobuf.ts";
 * // field 1 = varint 150, field 2 = the string "hi"
 * const fields = [...protobufFields(new Uint8Array([0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69]))];
 * console.assert(fields.length === 2 && fields[1].payloadStart === 5 && fields[1].end === 7);
 * ```
 */
export function* protobufFields(
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): Generator<ProtobufField> {
  let at = start;
  while (at < end) {
    const fieldStart = at;
    const [tag, afterTag] = readSize(bytes, at, end, "tag");
    const number = Math.floor(tag / 8), wireType = tag % 8;
    let payloadStart = afterTag, fieldEnd: number;
    switch (wireType) {
      case 0: // only its end is needed, so a value past 2^53 − 1 is skipped, not an error
        fieldEnd = readVarint(bytes, afterTag, end)[1];
        break;
      case 1:
        fieldEnd = afterTag + 8;
        break;
      case LENGTH_DELIMITED: {
        const [length, afterLength] = readSize(bytes, afterTag, end, "length");
        payloadStart = afterLength;
        fieldEnd = afterLength + length;
        break;
      }
      case 5:
        fieldEnd = afterTag + 4;
        break;
      default:
        throw new ModelLoadError(
          `unsupported protobuf wire type ${wireType} at byte ${fieldStart}; expected an ONNX ModelProto`,
        );
    }
    if (number === 0 || fieldEnd > end) {
      throw new ModelLoadError(
        `malformed protobuf field at byte ${fieldStart} (field ${number}, ends at ${fieldEnd} of ` +
          `${end}); expected an ONNX ModelProto`,
      );
    }
    yield { number, wireType, start: fieldStart, payloadStart, end: fieldEnd };
    at = fieldEnd;
  }
}

/** The most bytes a varint takes: a 64-bit value, 7 bits a byte (negative int64s take all 10). */
export const MAX_VARINT_BYTES = 10;

/**
 * Reads a base-128 varint at `at`: its value and the offset after it. The value is undefined
 * when it exceeds `Number.MAX_SAFE_INTEGER` (2^53 − 1), which a JavaScript number cannot hold
 * exactly — a negative int64 such as an attribute's `axis: -1` is written as 2^64 − 1 — so such
 * a value can be skipped, and is never returned rounded.
 *
 * @throws {ModelLoadError} when the varint runs past `end` or past 10 bytes
 *
 * @example
 * ```ts
 * import { readVarint } from "./protobuf.ts";
 * // 150, then -1 as an int64 (ten bytes)
 * const bytes = new Uint8Array([0x96, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
 * console.assert(readVarint(bytes, 0).join() === "150,2");
 * const [value, next] = readVarint(bytes, 2);
 * console.assert(value === undefined && next === 12);
 * ```
 */
export function readVarint(
  bytes: Uint8Array,
  at: number,
  end = bytes.length,
): [value: number | undefined, next: number] {
  let value = 0, scale = 1, exact = true;
  for (let i = at; i < end && i < at + MAX_VARINT_BYTES; i++) {
    // every term is exact, so the sum is exact up to 2^53 − 1 and rounds to ≥ 2^53 past it
    value += (bytes[i] & 0x7f) * scale;
    if (value > Number.MAX_SAFE_INTEGER) exact = false;
    if ((bytes[i] & 0x80) === 0) return [exact ? value : undefined, i + 1];
    scale *= 128;
  }
  throw new ModelLoadError(
    `malformed protobuf varint at byte ${at} (unterminated within ${
      Math.min(MAX_VARINT_BYTES, end - at)
    } bytes); expected an ONNX ModelProto`,
  );
}

/** A tag or length: a varint that must be exact (one past 2^53 − 1 cannot be a real one). */
function readSize(bytes: Uint8Array, at: number, end: number, what: string): [number, number] {
  const [value, next] = readVarint(bytes, at, end);
  if (value === undefined) {
    throw new ModelLoadError(
      `malformed protobuf ${what} at byte ${at} (above 2^53 - 1); expected an ONNX ModelProto`,
    );
  }
  return [value, next];
}
