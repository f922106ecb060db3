#include "tokenizer/chat_format.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {

namespace {

bool is_python_space(const unsigned char* p, int& length) {
  return unicode::classify(utf8::decode_valid(p, length)) & unicode::kPySpace;
}

// Python's str.strip() (what Meta's ChatFormat and the Jinja template's `trim` call) on valid
// UTF-8.
std::string_view strip(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t begin = 0, end = text.size();
  int length = 0;
  while (begin < end && is_python_space(p + begin, length)) begin += length;
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (p[start] & 0xC0) == 0x80) --start;  // back to the lead byte
    if (!is_python_space(p + start, length)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

void append_header(const Tokenizer& tok, std::string_view role, std::vector<int32_t>& out) {
  out.push_back(tok.special_id("<|start_header_id|>"));
  const auto role_ids = tok.encode(role, false, false);
  out.insert(out.end(), role_ids.begin(), role_ids.end());
  out.push_back(tok.special_id("<|end_header_id|>"));
  const auto blank_line = tok.encode("\n\n", false, false);
  out.insert(out.end(), blank_line.begin(), blank_line.end());
}

}  // namespace

std::vector<int32_t> encode_dialog(const Tokenizer& tok, std::span<const ChatMessage> dialog,
                                   bool add_generation_prompt, int32_t image_token) {
  std::vector<int32_t> out{tok.bos_id()};
  const int32_t eot = tok.special_id("<|eot_id|>");
  for (const ChatMessage& message : dialog) {
    check(!message.role.empty(), "chat message has an empty role");
    append_header(tok, message.role, out);
    check(message.images >= 0 && (message.images == 0 || image_token >= 0),
          "a {} message has {} images, but the model takes none", message.role, message.images);
    out.insert(out.end(), static_cast<size_t>(message.images), image_token);
    std::string content;
    utf8::append_replacing_invalid(message.content, content);
    // bos=false: the dialog's one BOS is already there; specials in content stay plain text.
    const auto ids = tok.encode(strip(content), false, false);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(eot);
  }
  if (add_generation_prompt) append_header(tok, "assistant", out);
  return out;
}

std::vector<int32_t> encode_prompt_with_images(const Tokenizer& tok, std::string_view text, int32_t image_token,
                                               size_t images) {
  constexpr std::string_view kMarker = "<|image|>";
  std::vector<int32_t> ids{tok.bos_id()};
  size_t markers = 0, from = 0;
  for (size_t at; image_token >= 0 && (at = text.find(kMarker, from)) != std::string_view::npos;
       from = at + kMarker.size(), ++markers) {
    const auto piece = tok.encode(text.substr(from, at - from), false, false);
    ids.insert(ids.end(), piece.begin(), piece.end());
    ids.push_back(image_token);
  }
  if (markers == 0 && image_token >= 0) ids.insert(ids.end(), images, image_token);
  const auto rest = tok.encode(text.substr(from), false, false);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

}  // namespace llama3::tokenizer
