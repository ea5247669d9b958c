// Export of a capture or a time range: the merged DDSketch as DataDog's protobuf (the wire
// format of docs/sketch.md, as sketch/encoding/ writes it: the kernel's mapping, bins as
// contiguousBinCounts, both stores and the zero count always present; Orion's exact
// sum/min/max fields are left out since the page only has bins), and a JSON document.

class ProtoWriter {
  constructor() {
    this.bytes = [];
  }
  varint(value) {
    let v = BigInt(value);
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  tag(field, wireType) {
    this.varint((field << 3) | wireType);
  }
  fixed64(double) {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, double, true);
    for (let i = 0; i < 8; ++i) this.bytes.push(view.getUint8(i));
  }
  doubleField(field, value) {
    this.tag(field, 1);
    this.fixed64(value);
  }
  unsignedField(field, value) {
    this.tag(field, 0);
    this.varint(value);
  }
  sint32Field(field, value) {
    this.tag(field, 0);
    this.varint(value >= 0 ? 2 * value : -2 * value - 1);
  }
  messageField(field, message) {
    this.tag(field, 2);
    this.varint(message.bytes.length);
    this.bytes.push(...message.bytes);
  }
  packedDoublesField(field, values) {
    this.tag(field, 2);
    this.varint(values.length * 8);
    for (const v of values) this.fixed64(v);
  }
}

function store(bins) {
  const writer = new ProtoWriter();
  const offset = bins.length ? bins[0][0] : 0;
  const contiguous = bins.length ? new Array(bins[bins.length - 1][0] - offset + 1).fill(0) : [];
  for (const [index, count] of bins) contiguous[index - offset] = count;
  writer.packedDoublesField(2, contiguous);
  writer.sint32Field(3, offset);
  return writer;
}

// The sketch (src/sketch.js) as ddsketch.proto bytes.
export function encodeSketch(sketch) {
  const mapping = new ProtoWriter();
  mapping.doubleField(1, sketch.mapping.gamma);
  mapping.doubleField(2, 0);
  mapping.unsignedField(3, 0);
  const writer = new ProtoWriter();
  writer.messageField(1, mapping);
  writer.messageField(2, store(sketch.bins()));
  writer.messageField(3, store([]));
  writer.doubleField(4, sketch.zero);
  return Uint8Array.from(writer.bytes);
}

// Standard base64 of bytes (what `orion sketch show` and `orion capture --json` read).
export function base64(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
