// The schema-less protobuf reader (src/models/sd/protobuf.ts) against the wire format's closed
// forms: a varint is the value's 7-bit groups, low first, the high bit set on every byte but the
// last; a negative int64 is its two's complement as a uint64, so always 10 bytes.
import assert from "node:assert/strict";
import onnxProto from "npm:onnx-proto@8.0.1";
import { ModelLoadError } from "../src/errors.ts";
import { MAX_VARINT_BYTES, protobufFields, readVarint } from "../src/models/sd/protobuf.ts";
import { onnxExternalDataFiles } from "../src/models/sd/onnx-external-data.ts";

/** The varint of an unsigned 64-bit value (a negative int64 passed as its uint64 form). */
function varint(value: bigint): number[] {
  const out: number[] = [];
  do {
    const group = Number(value & 0x7fn);
    value >>= 7n;
    out.push(value > 0n ? group | 0x80 : group);
  } while (value > 0n);
  return out;
}

const UINT64_MAX = (1n << 64n) - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

Deno.test("readVarint: values up to 2^53 − 1 read exactly, larger ones (to 2^64 − 1) skipped", () => {
  // the encoder itself against the protobuf documentation's examples
  assert.deepEqual(varint(150n), [0x96, 0x01]);
  assert.deepEqual(varint(BigInt.asUintN(64, -1n)), [...Array(9).fill(0xff), 0x01]);
  const values = [
    0n,
    1n,
    127n,
    128n,
    150n,
    300n,
    SAFE - 1n,
    SAFE,
    SAFE + 1n,
    SAFE + 2n,
    UINT64_MAX,
  ];
  // every power of two and its neighbours, so each byte count 1…10 and each boundary is met
  for (let k = 0n; k < 64n; k++) values.push((1n << k) - 1n, 1n << k, (1n << k) + 1n);
  for (const value of values) {
    const bytes = [0xaa, ...varint(value), 0xbb]; // the varint between two other bytes
    const [read, next] = readVarint(new Uint8Array(bytes), 1);
    assert.equal(next, bytes.length - 1, `${value}: ends after its ${bytes.length - 2} bytes`);
    assert.equal(read, value <= SAFE ? Number(value) : undefined, `${value}`);
  }
  const minusOne = new Uint8Array(varint(BigInt.asUintN(64, -1n)));
  assert.equal(minusOne.length, MAX_VARINT_BYTES);
  assert.deepEqual(readVarint(minusOne, 0), [undefined, 10]);
  assert.deepEqual(readVarint(new Uint8Array(varint(SAFE + 1n)), 0), [undefined, 8]);
});

Deno.test("readVarint: a varint cut off, or longer than 10 bytes, is a load error", () => {
  const cut = new Uint8Array(varint(UINT64_MAX)).subarray(0, 9);
  assert.throws(() => readVarint(cut, 0), ModelLoadError);
  assert.throws(() => readVarint(new Uint8Array([0x96, 0x01]), 0, 1), /varint at byte 0/);
  const eleven = new Uint8Array([...Array(10).fill(0x80), 0x00]);
  assert.throws(() => readVarint(eleven, 0), /unterminated within 10 bytes/);
});

Deno.test("protobufFields: a negative int64 field is skipped whole; a tag or length past 2^53 is refused", () => {
  // field 3 (AttributeProto.i) = -1, then field 1 (name) = "axis"
  const bytes = new Uint8Array([
    (3 << 3) | 0,
    ...varint(BigInt.asUintN(64, -1n)),
    (1 << 3) | 2,
    4,
    ...new TextEncoder().encode("axis"),
  ]);
  const fields = [...protobufFields(bytes)];
  assert.deepEqual(fields.map((f) => [f.number, f.wireType, f.start, f.payloadStart, f.end]), [
    [3, 0, 0, 1, 11],
    [1, 2, 11, 13, 17],
  ]);
  const hugeLength = new Uint8Array([(1 << 3) | 2, ...varint(SAFE + 2n)]);
  assert.throws(() => [...protobufFields(hugeLength)], /protobuf length at byte 1/);
  const hugeTag = new Uint8Array(varint(((SAFE + 1n) << 3n) | 0n));
  assert.throws(() => [...protobufFields(hugeTag)], /protobuf tag at byte 0/);
});

Deno.test("onnxExternalDataFiles reads past a node's axis: -1 to the weights a graph names", () => {
  // written by onnx-proto (protobufjs from onnx.proto): a Softmax over the last axis, as in every
  // CLIP text encoder and UNet, before an initializer kept in an external file
  const { onnx } = onnxProto;
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    graph: {
      name: "g",
      node: [{
        opType: "Softmax",
        input: ["x"],
        output: ["y"],
        attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
      }],
      initializer: [{
        name: "w",
        dataType: onnx.TensorProto.DataType.FLOAT,
        dims: [2],
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [{ key: "location", value: "weights.bin" }, { key: "offset", value: "0" }],
      }],
    },
  }).finish();
  // the attribute's value is the ten-byte form of -1 (field 3, varint)
  const minusOne = [(3 << 3) | 0, ...varint(BigInt.asUintN(64, -1n))];
  const text = bytes.join(",");
  assert.ok(text.includes(minusOne.join(",")), "protobufjs writes axis -1 in 10 bytes");
  assert.deepEqual(onnxExternalDataFiles(bytes, "unet/model.onnx"), ["weights.bin"]);
});
