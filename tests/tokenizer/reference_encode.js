// Independent reference ids for the tokenizer tests (reference_test.cpp runs this).
//
//   node reference_encode.js NPM_DIR TOKENIZER_DIR TIKTOKEN_FILE INPUT_JSON OUTPUT_JSON
//
// INPUT_JSON is an array of strings. For each, OUTPUT_JSON holds:
//   plain    @lenml/tokenizers (a port of Hugging Face tokenizers) with special-token text read
//            as plain text (its added tokens removed), no BOS
//   special  @lenml/tokenizers as shipped: special-token text becomes special ids, no BOS
//   bos      @lenml/tokenizers as shipped, with add_special_tokens (BOS first)
//   meta     npm tiktoken (WASM build of the Rust core Meta's tokenizer calls) on the rank file,
//            after Meta's cuts of long inputs (<= 400k characters, <= 25k-character runs of
//            white space / non-white space), special-token text as plain text, no BOS
'use strict';
const fs = require('fs');
const path = require('path');

const [npmDir, tokenizerDir, tiktokenFile, inputFile, outputFile] = process.argv.slice(2);
if (!outputFile) {
  console.error('usage: node reference_encode.js NPM_DIR TOKENIZER_DIR TIKTOKEN_FILE INPUT OUTPUT');
  process.exit(2);
}
function need(name) {
  const dir = path.join(npmDir, 'node_modules', name);
  if (!fs.existsSync(dir)) {
    console.error(`missing npm package ${name} under ${npmDir}: run scripts/setup.sh`);
    process.exit(3);
  }
  return require(dir);
}
const { TokenizerLoader } = need('@lenml/tokenizers');
const { Tiktoken } = need('tiktoken');

const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer.json'), 'utf8'));
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer_config.json'), 'utf8'));
const shipped = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const plainJSON = { ...tokenizerJSON, added_tokens: [] };
const plain = TokenizerLoader.fromPreTrained({ tokenizerJSON: plainJSON, tokenizerConfig });

const PAT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const tiktoken = new Tiktoken(fs.readFileSync(tiktokenFile, 'utf8'), {}, PAT);

// Python's str.isspace(), which Meta's splitter calls.
const PY_SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
function* metaPieces(text) {
  const chars = Array.from(text);  // code points, as Python indexes strings
  for (let i = 0; i < chars.length; i += 400000) {
    const s = chars.slice(i, i + 400000);
    let runLength = 0;
    let runIsSpace = PY_SPACE.test(s[0]);
    let start = 0;
    for (let j = 0; j < s.length; j++) {
      const isSpace = PY_SPACE.test(s[j]);
      if (runIsSpace !== isSpace) {
        runLength = 1;
        runIsSpace = isSpace;
      } else if (++runLength > 25000) {
        yield s.slice(start, j).join('');
        start = j;
        runLength = 1;
      }
    }
    yield s.slice(start).join('');
  }
}
function metaEncode(text) {
  const ids = [];
  for (const piece of metaPieces(text)) ids.push(...tiktoken.encode_ordinary(piece));
  return ids;
}

const lines = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
const out = lines.map((line) => ({
  plain: plain.encode(line, { add_special_tokens: false }),
  special: shipped.encode(line, { add_special_tokens: false }),
  bos: shipped.encode(line, { add_special_tokens: true }),
  meta: metaEncode(line),
}));
fs.writeFileSync(outputFile, JSON.stringify(out));
tiktoken.free();
