#include "io/restricted_unpickler.h"

#include <fmt/format.h>

#include <bit>
#include <unordered_map>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/pickle_value.h"
#include "io/torch_pickle_rules.h"

namespace llama3::io {
namespace {

// Limits far above what a state dict needs (a 70B shard's data.pkl has ~10k objects) and far
// below what would hurt the machine.
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMarks = size_t{1} << 16;
constexpr size_t kMaxMemo = size_t{1} << 20;
constexpr size_t kMaxValues = size_t{1} << 20;  // ~150 MB at worst
constexpr size_t kMaxGlobalLine = 256;

// Names of the opcodes we refuse, so the error says which one it met.
std::string_view forbidden_opcode_name(uint8_t op) {
  switch (op) {
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'F': return "FLOAT";
    case 'l': return "LIST";
    case 'd': return "DICT";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'g': return "GET";
    case '2': return "DUP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case 'P': return "PERSID";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x8b: return "LONG4";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown";
  }
}

class Unpickler {
 public:
  Unpickler(std::span<const std::byte> pickle, const std::string& what)
      : in_(pickle, what), what_(what), arena_(kMaxValues, what) {}

  const PickleValue& run() {
    while (true) {
      check(!in_.at_end(), "{}: truncated pickle: ends at byte {} without STOP", what_,
            in_.position());
      op_at_ = in_.position();
      const uint8_t op = in_.u8();
      if (op == '.') return *pop();  // STOP
      step(op);
    }
  }

 private:
  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t version = in_.u8();
        check(version <= 5, "{}: unsupported pickle protocol {}", what_, version);
        return;
      }
      case 0x95: {  // FRAME: a length hint for buffered readers; the opcodes follow inline
        const uint64_t len = in_.u64();
        check(len <= in_.remaining(), "{}: truncated pickle: frame of {} bytes at byte {}", what_,
              len, op_at_);
        return;
      }
      case '}': return push(arena_.make(PickleKind::Dict));   // EMPTY_DICT
      case ']': return push(arena_.make(PickleKind::List));   // EMPTY_LIST
      case ')': return push(arena_.make(PickleKind::Tuple));  // EMPTY_TUPLE
      case '(':                                               // MARK
        check(marks_.size() < kMaxMarks, "{}: pickle nests more than {} marks", what_, kMaxMarks);
        marks_.push_back(stack_.size());
        return;
      case 't': return push(tuple(pop_mark()));  // TUPLE
      case 0x85:                                 // TUPLE1
      case 0x86:                                 // TUPLE2
      case 0x87:                                 // TUPLE3
        return push(tuple(pop_n(op - 0x84)));
      case 'X': return push(string(in_.text(in_.u32())));     // BINUNICODE
      case 0x8c: return push(string(in_.text(in_.u8())));     // SHORT_BINUNICODE
      case 0x8d: return push(string(in_.text(in_.u64())));    // BINUNICODE8
      case 'J': return push(integer(static_cast<int32_t>(in_.u32())));  // BININT
      case 'K': return push(integer(in_.u8()));                         // BININT1
      case 'M': return push(integer(in_.u16()));                        // BININT2
      case 0x8a: return push(integer(long1()));                         // LONG1
      case 0x88: return push(boolean(true));                            // NEWTRUE
      case 0x89: return push(boolean(false));                           // NEWFALSE
      case 'N': return push(arena_.make(PickleKind::None));             // NONE
      case 'G': {                                                       // BINFLOAT, big-endian
        uint64_t bits = 0;
        for (const std::byte b : in_.bytes(8)) bits = bits << 8 | static_cast<uint64_t>(b);
        PickleValue* v = arena_.make(PickleKind::Float);
        v->real = std::bit_cast<double>(bits);
        return push(v);
      }
      case 'q': return put(in_.u8());   // BINPUT
      case 'r': return put(in_.u32());  // LONG_BINPUT
      case 0x94: return put(memo_.size());  // MEMOIZE
      case 'h': return push(get(in_.u8()));   // BINGET
      case 'j': return push(get(in_.u32()));  // LONG_BINGET
      case 's': {                             // SETITEM
        PickleValue* value = pop();
        PickleValue* key = pop();
        PickleValue& dict = expect(top(), PickleKind::Dict, "SETITEM");
        dict.items.push_back(key);
        dict.items.push_back(value);
        return;
      }
      case 'u': {  // SETITEMS
        std::vector<PickleValue*> items = pop_mark();
        check(items.size() % 2 == 0, "{}: SETITEMS at byte {} has an odd number of items", what_,
              op_at_);
        PickleValue& dict = expect(top(), PickleKind::Dict, "SETITEMS");
        dict.items.insert(dict.items.end(), items.begin(), items.end());
        return;
      }
      case 'a': {  // APPEND
        PickleValue* value = pop();
        expect(top(), PickleKind::List, "APPEND").items.push_back(value);
        return;
      }
      case 'e': {  // APPENDS
        std::vector<PickleValue*> items = pop_mark();
        PickleValue& list = expect(top(), PickleKind::List, "APPENDS");
        list.items.insert(list.items.end(), items.begin(), items.end());
        return;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module(in_.line(kMaxGlobalLine));
        const std::string name(in_.line(kMaxGlobalLine));
        return push(torch_rules::global(arena_, module, name, at()));
      }
      case 'R': {  // REDUCE
        PickleValue* args = pop();
        PickleValue* callable = pop();
        return push(torch_rules::call(arena_, *callable, *args, at()));
      }
      case 'Q': {  // BINPERSID
        PickleValue* pid = pop();
        return push(torch_rules::persistent_load(arena_, *pid, at()));
      }
      case 'b': {  // BUILD
        PickleValue* state = pop();
        torch_rules::build(*top(), *state, at());
        return;
      }
      default:
        fail("{}: forbidden pickle opcode {} (0x{:02x}) at byte {}", what_,
             forbidden_opcode_name(op), op, op_at_);
    }
  }

  std::string at() const { return fmt::format("{} (byte {})", what_, op_at_); }

  void push(PickleValue* v) {
    check(stack_.size() < kMaxStack, "{}: pickle stack exceeds {} entries", what_, kMaxStack);
    stack_.push_back(v);
  }
  // The stack below the innermost MARK belongs to an outer construct: popping into it is an
  // error, as in CPython's unpickler.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  PickleValue* pop() {
    check(stack_.size() > floor(), "{}: pickle stack underflow at byte {}", what_, op_at_);
    PickleValue* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleValue* top() {
    check(stack_.size() > floor(), "{}: pickle stack underflow at byte {}", what_, op_at_);
    return stack_.back();
  }
  std::vector<PickleValue*> pop_n(size_t n) {
    check(stack_.size() >= floor() + n, "{}: pickle stack underflow at byte {}", what_, op_at_);
    std::vector<PickleValue*> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return items;
  }
  std::vector<PickleValue*> pop_mark() {
    check(!marks_.empty(), "{}: pickle opcode at byte {} needs a MARK", what_, op_at_);
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark),
                                    stack_.end());
    stack_.resize(mark);
    return items;
  }
  PickleValue& expect(PickleValue* v, PickleKind kind, std::string_view opcode) {
    check(v->kind == kind, "{}: {} at byte {} applies to {}, expected {}", what_, opcode,
          op_at_, pickle_kind_phrase(v->kind), pickle_kind_phrase(kind));
    return *v;
  }

  void put(uint64_t index) {
    PickleValue* v = top();
    const auto it = memo_.find(index);
    if (it != memo_.end()) {
      it->second = v;
      return;
    }
    check(memo_.size() < kMaxMemo, "{}: pickle memo exceeds {} entries", what_, kMaxMemo);
    memo_.emplace(index, v);
  }
  PickleValue* get(uint64_t index) {
    const auto it = memo_.find(index);
    check(it != memo_.end(), "{}: pickle reads memo entry {} that was never stored (byte {})",
          what_, index, op_at_);
    return it->second;
  }

  PickleValue* tuple(std::vector<PickleValue*> items) {
    PickleValue* v = arena_.make(PickleKind::Tuple);
    v->items = std::move(items);
    return v;
  }
  PickleValue* string(std::string_view text) {
    PickleValue* v = arena_.make(PickleKind::String);
    v->text = text;
    return v;
  }
  PickleValue* integer(int64_t i) {
    PickleValue* v = arena_.make(PickleKind::Int);
    v->integer = i;
    return v;
  }
  PickleValue* boolean(bool b) {
    PickleValue* v = arena_.make(PickleKind::Bool);
    v->integer = b;
    return v;
  }
  // LONG1: a little-endian two's complement integer of n bytes; we take up to 64 bits.
  int64_t long1() {
    const uint8_t n = in_.u8();
    check(n <= 8, "{}: LONG1 integer of {} bytes at byte {} does not fit in 64 bits", what_, n,
          op_at_);
    const auto bytes = in_.bytes(n);
    if (n == 0) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes[i]) << (8 * i);
    const unsigned unused = 64 - 8u * n;  // sign-extend from the top byte read
    return static_cast<int64_t>(v << unused) >> unused;
  }

  ByteReader in_;
  const std::string& what_;
  PickleArena arena_;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
  size_t op_at_ = 0;
};

}  // namespace

std::vector<PickledTensor> unpickle_state_dict(std::span<const std::byte> pickle,
                                               const std::string& what) {
  Unpickler unpickler(pickle, what);
  return torch_rules::state_dict(unpickler.run(), what);
}

}  // namespace llama3::io
