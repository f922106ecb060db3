// Prints a GGUF file's header, metadata and tensor infos as JSON, as parsed by @huggingface/gguf:
// an independent reader the GGUF tests compare ours (and our writer's output) against.
// Usage: node gguf_dump.cjs <node_modules dir> <file.gguf>
// Integers are printed as decimal strings (u64/i64 would not survive JSON numbers); floats as
// numbers (an f32 widened to double, printed so that it parses back to the same double).
"use strict";
const path = require("path");

const [modulesDir, file] = process.argv.slice(2);
const { gguf, GGUFValueType } = require(path.join(modulesDir, "@huggingface/gguf"));

const isFloat = (type) => type === GGUFValueType.FLOAT32 || type === GGUFValueType.FLOAT64;
const isText = (type) => type === GGUFValueType.STRING || type === GGUFValueType.BOOL;
const scalar = (type, v) => (isFloat(type) || isText(type) ? v : String(v));

gguf(file, { allowLocalFile: true, typedMetadata: true })
  .then(({ typedMetadata, tensorInfos, tensorDataOffset }) => {
    const header = ["version", "tensor_count", "kv_count"];
    const metadata = Object.entries(typedMetadata)
      .filter(([key]) => !header.includes(key))
      .map(([key, { type, subType, value }]) => {
        const entry = { key, type };
        if (type === GGUFValueType.ARRAY) {
          entry.sub_type = subType;
          entry.value = value.map((v) => scalar(subType, v));
        } else {
          entry.value = scalar(type, value);
        }
        return entry;
      });
    const out = {
      version: typedMetadata.version.value,
      tensor_count: String(typedMetadata.tensor_count.value),
      kv_count: String(typedMetadata.kv_count.value),
      data_offset: String(tensorDataOffset),
      metadata,
      tensors: tensorInfos.map((t) => ({
        name: t.name,
        dims: t.shape.map(String),
        type: t.dtype,
        offset: String(t.offset),
      })),
    };
    process.stdout.write(JSON.stringify(out) + "\n");
  })
  .catch((err) => {
    process.stderr.write(`gguf_dump: ${err.message}\n`);
    process.exit(1);
  });
