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
    const [tag, afterTag] = readVarint(bytes, at, end);
    const number = Math.floor(tag / 8), wireType = tag % 8;
    let payloadStart = afterTag, fieldEnd: number;
    switch (wireType) {
      case 0:
        fieldEnd = readVarint(bytes, afterTag, end)[1];
        break;
      case 1:
        fieldEnd = afterTag + 8;
        break;
      case LENGTH_DELIMITED: {
        const [length, afterLength] = readVarint(bytes, afterTag, end);
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

/** Reads a base-128 varint (up to 2^53) at `at`; returns the value and the next offset. */
function readVarint(bytes: Uint8Array, at: number, end: number): [number, number] {
  let value = 0, scale = 1;
  for (let i = at; i < end && i < at + 8; i++) {
    value += (bytes[i] & 0x7f) * scale;
    if ((bytes[i] & 0x80) === 0) return [value, i + 1];
    scale *= 128;
  }
  throw new ModelLoadError(`malformed protobuf varint at byte ${at}; expected an ONNX ModelProto`);
}
