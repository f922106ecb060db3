// GGUF: the reader, the metadata getters, and the tokenizer metadata (tokenizer.ggml.*).
// Properties: every tensor's bytes lie inside the file and match type and dims; every key's value
// can be read as its own type; a file that parses, written again by our writer (metadata and
// tensors), reads back the same; a vocabulary that loads encodes and decodes text, and survives
// to_vocab -> from_vocab with the same ids.
#include <cstring>
#include <vector>

#include "core/ggml_type.h"
#include "fuzz_support.h"
#include "io/gguf_file.h"
#include "io/gguf_writer.h"
#include "runtime/tokenizer_location.h"
#include "tokenizer/tokenizer.h"

using namespace llama3;

namespace {

// Copies one metadata value into the writer (as its own type).
void copy_value(io::GgufWriter& w, std::string_view key, const io::GgufValue& v) {
  using io::GgufType;
  if (v.type() == GgufType::STRING) return w.set_string(key, v.string());
  if (v.type() == GgufType::ARRAY) {
    if (v.element_type() == GgufType::STRING) {
      const std::vector<std::string_view> s = v.strings();
      return w.set_array(key, std::span<const std::string_view>(s));
    }
    if (v.element_type() == GgufType::ARRAY) return;  // nested arrays: not written by us
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<bool> bools;
    for (uint64_t i = 0; i < v.count(); ++i) {
      const io::GgufScalar s = v.element(i);
      if (const auto* u = std::get_if<uint64_t>(&s)) ints.push_back(static_cast<int64_t>(*u));
      if (const auto* n = std::get_if<int64_t>(&s)) ints.push_back(*n);
      if (const auto* d = std::get_if<double>(&s)) floats.push_back(*d);
      if (const auto* b = std::get_if<bool>(&s)) bools.push_back(*b);
    }
    if (!floats.empty()) return w.set_array(key, std::span<const double>(floats));
    if (!bools.empty()) {
      const std::vector<uint8_t> bytes(bools.begin(), bools.end());
      return w.set_array(key, std::span<const uint8_t>(bytes));
    }
    return w.set_array(key, std::span<const int64_t>(ints));
  }
  const io::GgufScalar s = v.scalar();
  if (const auto* u = std::get_if<uint64_t>(&s)) return w.set_u64(key, *u);
  if (const auto* n = std::get_if<int64_t>(&s)) return w.set_i64(key, *n);
  if (const auto* d = std::get_if<double>(&s)) return w.set_f64(key, *d);
  if (const auto* b = std::get_if<bool>(&s)) return w.set_bool(key, *b);
}

void round_trip(const io::GgufFile& file) {
  io::GgufWriter w;
  for (std::string_view key : file.keys()) {
    if (key == io::kGgufAlignmentKey) continue;  // the writer's own
    copy_value(w, key, file.value(key));
  }
  for (const io::GgufTensor& t : file.tensors()) {
    const std::span<const std::byte> bytes = t.data;
    w.add_tensor(t.name, t.type, t.dims, bytes.size(),
                 [bytes](std::span<std::byte> out) { std::memcpy(out.data(), bytes.data(), bytes.size()); });
  }
  const std::filesystem::path copy = fuzz::scratch_dir() / "again.gguf";
  if (!fuzz::accepts([&] { w.write(copy); })) return;  // e.g. a name our writer refuses (too long)
  std::optional<io::GgufFile> again;
  if (!fuzz::accepts([&] { again.emplace(copy); })) fuzz::finding("our own writer's file is rejected");
  fuzz::require(again->tensors().size() == file.tensors().size(), "round trip: tensor count");
  for (const io::GgufTensor& t : file.tensors()) {
    const io::GgufTensor* r = again->find(t.name);
    fuzz::require(r && r->type == t.type && r->dims == t.dims, "round trip: a tensor's name, type or dims");
    fuzz::require(std::equal(r->data.begin(), r->data.end(), t.data.begin(), t.data.end()), "round trip: bytes");
  }
  for (std::string_view key : file.keys()) {
    if (key == io::kGgufAlignmentKey) continue;
    fuzz::require(again->has(key), "round trip: a key is lost");
    if (file.type_of(key) == io::GgufType::STRING) {
      fuzz::require(again->get_string(key) == file.get_string(key), "round trip: a string value");
    }
  }
}

void check_vocabulary(const io::GgufFile& file) {
  if (!file.has("tokenizer.ggml.tokens")) return;
  std::optional<tokenizer::Tokenizer> tok;
  if (!fuzz::accepts([&] { tok.emplace(tokenizer::Tokenizer::from_vocab(runtime::gguf_vocab_arrays(file))); })) return;
  for (std::string_view text : {"Hello, world! 123", " \xc3\xa9t\xc3\xa9\n\n", "<|eot_id|>x"}) {
    std::vector<int32_t> ids;
    if (!fuzz::accepts([&] { ids = tok->encode(text, true, false, true); })) continue;
    for (int32_t id : ids) fuzz::require(id >= 0 && id < tok->vocab_size(), "encode gave an id outside the vocabulary");
    fuzz::accepts([&] { (void)tok->decode(ids); });
  }
  const tokenizer::OwnedVocabArrays owned = tok->to_vocab();
  std::optional<tokenizer::Tokenizer> again;
  if (!fuzz::accepts([&] { again.emplace(tokenizer::Tokenizer::from_vocab(owned.view())); })) {
    fuzz::finding("to_vocab of a loaded vocabulary is rejected by from_vocab");
  }
  fuzz::require(again->vocab_size() == tok->vocab_size(), "vocabulary round trip: size");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<io::GgufFile> file;
  if (!fuzz::accepts([&] { file.emplace(fuzz::write_scratch("model.gguf", {data, size})); })) return 0;
  for (const io::GgufTensor& t : file->tensors()) {
    fuzz::require(fuzz::inside(t.data, file->bytes()), "tensor data outside the file");
    const GgmlTypeTraits traits = ggml_traits(t.type);
    fuzz::require(t.elements() % traits.block_elements == 0 &&
                      t.data.size() == static_cast<size_t>(t.elements() / traits.block_elements * traits.block_bytes),
                  "tensor size does not match type and dims");
    fuzz::require(file->find(t.name) != nullptr, "a listed tensor is not found");
  }
  for (std::string_view key : file->keys()) {
    const io::GgufValue& v = file->value(key);
    fuzz::accepts([&] { (void)v.type_name(); });
    if (v.type() == io::GgufType::ARRAY && v.element_type() == io::GgufType::STRING) (void)v.strings();
  }
  round_trip(*file);
  check_vocabulary(*file);
  return 0;
}
