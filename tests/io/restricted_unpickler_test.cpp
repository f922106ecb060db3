#include "io/restricted_unpickler.h"

#include <gtest/gtest.h>

#include <bit>

#include "io/checked_math.h"
#include "io_test_helpers.h"

namespace llama3::io {
namespace {

using namespace std::string_literals;
using testing::le;
using testing::le16;
using testing::le32;
using testing::le64;

// Pickle opcodes written by hand, so each test states exactly the bytes it feeds the reader.
const std::string kProto2 = "\x80\x02";
std::string uni(std::string_view s) { return "X" + le32(s.size()) + std::string(s); }
std::string global(std::string_view module, std::string_view name) {
  return fmt::format("c{}\n{}\n", module, name);
}
std::string long1(int64_t v) { return "\x8a\x08" + le64(static_cast<uint64_t>(v)); }
std::string integer(int64_t v) {
  if (v >= 0 && v < 256) return "K" + std::string(1, static_cast<char>(v));
  if (v >= 0 && v < 65536) return "M" + le16(v);
  if (v >= INT32_MIN && v <= INT32_MAX) return "J" + le32(static_cast<uint32_t>(v));
  return long1(v);
}
std::string int_tuple(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (const int64_t x : v) out += integer(x);
  return out + "t";
}

struct TensorSpec {
  std::string storage_type = "FloatStorage";
  std::string key = "0";
  int64_t storage_numel = 6;
  int64_t offset = 0;
  std::vector<int64_t> size = {2, 3};
  std::vector<int64_t> stride = {3, 1};
};

// What torch.save writes for one tensor: _rebuild_tensor_v2(persistent storage, offset, size,
// stride, requires_grad=False, OrderedDict()).
std::string storage_pid(const TensorSpec& t) {
  return "(" + uni("storage") + global("torch", t.storage_type) + uni(t.key) + uni("cpu") +
         integer(t.storage_numel) + "tQ";
}
std::string rebuild_args(const TensorSpec& t, const std::string& tail = "") {
  return "(" + storage_pid(t) + integer(t.offset) + int_tuple(t.size) + int_tuple(t.stride) +
         "\x89" + global("collections", "OrderedDict") + ")R" + tail + "t";
}
std::string tensor(const TensorSpec& t = {}) {
  return global("torch._utils", "_rebuild_tensor_v2") + rebuild_args(t) + "R";
}
std::string state_dict(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out = kProto2 + "}(";
  for (const auto& [name, value] : entries) out += uni(name) + value;
  return out + "u.";
}

std::vector<PickledTensor> unpickle(const std::string& pickle) {
  return unpickle_state_dict(
      {reinterpret_cast<const std::byte*>(pickle.data()), pickle.size()}, "t.pkl");
}

TEST(RestrictedUnpickler, ReadsATorchStyleStateDict) {
  TensorSpec half{.storage_type = "HalfStorage", .key = "7", .storage_numel = 10, .offset = 4,
                  .size = {2, 3}, .stride = {3, 1}};
  const auto tensors = unpickle(state_dict({{"a.weight", tensor()}, {"b", tensor(half)}}));
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].name, "a.weight");
  EXPECT_EQ(tensors[0].dtype, DType::F32);
  EXPECT_EQ(tensors[0].storage_key, "0");
  EXPECT_EQ(tensors[0].storage_numel, 6);
  EXPECT_EQ(tensors[0].offset, 0);
  EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(tensors[1].name, "b");
  EXPECT_EQ(tensors[1].dtype, DType::F16);
  EXPECT_EQ(tensors[1].storage_key, "7");
  EXPECT_EQ(tensors[1].offset, 4);
}

TEST(RestrictedUnpickler, MapsEveryStorageType) {
  const std::vector<std::pair<std::string, DType>> types = {
      {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16}, {"BFloat16Storage", DType::BF16},
      {"LongStorage", DType::I64},  {"IntStorage", DType::I32},  {"CharStorage", DType::I8},
      {"ByteStorage", DType::U8},   {"BoolStorage", DType::BOOL}};
  for (const auto& [type, dtype] : types) {
    SCOPED_TRACE(type);
    TensorSpec spec;
    spec.storage_type = type;
    EXPECT_EQ(unpickle(state_dict({{"w", tensor(spec)}}))[0].dtype, dtype);
  }
}

// One pickle using every opcode the reader supports, including protocol 4's FRAME, MEMOIZE,
// SHORT_BINUNICODE and BINUNICODE8, the torch 2.x wrappers, and a BUILD on the root dict.
std::string every_opcode_pickle() {
  const std::string hooks = "]Na(G" + [] {  // [None, 1.5, False]
    std::string b;
    const auto bits = std::bit_cast<uint64_t>(1.5);
    for (int i = 7; i >= 0; --i) b += static_cast<char>((bits >> (8 * i)) & 0xff);
    return b;
  }() + "\x89" + "e";
  const std::string body =
      global("collections", "OrderedDict") + "\x94" + ")R\x94" + "(" +
      // "w": _rebuild_parameter(_rebuild_from_type_v2(_rebuild_tensor_v2, Tensor, args, {}),
      //                          True, hooks) with 64-bit storage size and offset.
      "\x8c\x01w\x94" + global("torch._utils", "_rebuild_parameter") +
      global("torch._tensor", "_rebuild_from_type_v2") + "(" +
      global("torch._utils", "_rebuild_tensor_v2") + "r" + le32(1000) +
      global("torch", "Tensor") + "((" + "\x8d" + le64(7) + "storage" +
      global("torch", "BFloat16Storage") + uni("0") + "\x8c\x03" "cpu" + "\x8a\x05" +
      le(uint64_t{1} << 33, 5) + "tQr" + le32(70000) + "\x8a\x05" + le(uint64_t{1} << 32, 5) +
      "M" + le16(300) + "J" + le32(2) + "\x86" + "J" + le32(2) + "K\x01\x86" + "\x88" + hooks +
      "t}tR" + "\x88" + "h\x00)R"s + "\x87" + "R" +
      // "t": the same storage again, through LONG_BINGET; a TUPLE3-less 1-d view.
      "\x8c\x01t" + "j" + le32(1000) + "(j" + le32(70000) + "K\x00K\x04\x85K\x01\x85\x89h\x00)Rt"s +
      "R" +
      // "s": a scalar at offset 5 (BININT), with the optional 7th metadata argument.
      "\x8c\x01s" + "j" + le32(1000) + "(j" + le32(70000) + "J" + le32(5) + "))\x89h\x00)R}tRq\x05"s +
      "u" + "}" + uni("_metadata") + "}s" + "b" + ".";
  return "\x80\x04\x95" + le64(body.size()) + body;
}

TEST(RestrictedUnpickler, SupportsEveryAllowedOpcode) {
  const auto tensors = unpickle(every_opcode_pickle());
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors[0].name, "w");
  EXPECT_EQ(tensors[0].dtype, DType::BF16);
  EXPECT_EQ(tensors[0].storage_numel, int64_t{1} << 33);
  EXPECT_EQ(tensors[0].offset, int64_t{1} << 32);
  EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{300, 2}));
  EXPECT_EQ(tensors[1].name, "t");
  EXPECT_EQ(tensors[1].storage_key, "0");
  EXPECT_EQ(tensors[1].offset, 0);
  EXPECT_EQ(tensors[1].shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(tensors[2].name, "s");
  EXPECT_EQ(tensors[2].offset, 5);
  EXPECT_TRUE(tensors[2].shape.empty());
}

TEST(RestrictedUnpickler, AcceptsAnyStrideOnUnitDimsAndEmptyTensors) {
  // torch's contiguity rule: size-1 dims may carry any stride; an empty tensor is contiguous.
  TensorSpec unit{.size = {1, 3, 1}, .stride = {99, 1, 7}};
  TensorSpec empty{.size = {0, 3}, .stride = {5, 5}};
  const auto tensors = unpickle(state_dict({{"unit", tensor(unit)}, {"empty", tensor(empty)}}));
  EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{1, 3, 1}));
  EXPECT_EQ(tensors[1].shape, (std::vector<int64_t>{0, 3}));
}

TEST(RestrictedUnpickler, RejectsForbiddenOpcodes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"i", "INST"},      {"o", "OBJ"},        {"\x81", "NEWOBJ"}, {"\x92", "NEWOBJ_EX"},
      {"\x93", "STACK_GLOBAL"}, {"P", "PERSID"}, {"\x82", "EXT1"}, {"I", "INT"},
      {"S", "STRING"},    {"d", "DICT"},       {"l", "LIST"},     {"2", "DUP"},
      {"p", "PUT"},       {"g", "GET"},        {"B", "BINBYTES"}, {"\x8f", "EMPTY_SET"},
      {"\x97", "NEXT_BUFFER"}, {"0", "POP"},   {"\xff", "unknown"}};
  for (const auto& entry : cases) {  // clang 14: lambdas cannot capture structured bindings
    const auto& op = entry.first;
    const auto& name = entry.second;
    SCOPED_TRACE(name);
    EXPECT_IO_ERROR(unpickle(kProto2 + op + std::string(16, '\0') + "."), "t.pkl",
                    fmt::format("forbidden pickle opcode {} (0x{:02x}) at byte 2", name,
                                static_cast<uint8_t>(op[0])));
  }
  // The protocol 4 way of naming os.system.
  EXPECT_IO_ERROR(unpickle("\x80\x04\x8c\x02os\x8c\x06system\x93" + uni("id") + "\x85R."),
                  "forbidden pickle opcode STACK_GLOBAL");
}

TEST(RestrictedUnpickler, RejectsGlobalsOutsideTheAllowList) {
  const std::vector<std::pair<std::string, std::string>> forbidden = {
      {"os", "system"},
      {"posix", "system"},
      {"builtins", "eval"},
      {"builtins", "getattr"},
      {"subprocess", "Popen"},
      {"torch", "load"},
      {"torch._utils", "_rebuild_tensor"},
      {"torch.storage", "_load_from_bytes"},
      {"collections", "namedtuple"},
      {"torch._utils", "_rebuild_tensor_v2x"},
  };
  for (const auto& entry : forbidden) {  // clang 14: lambdas cannot capture structured bindings
    const auto& module = entry.first;
    const auto& name = entry.second;
    SCOPED_TRACE(name);
    EXPECT_IO_ERROR(unpickle(kProto2 + global(module, name) + uni("id") + "\x85R."), "t.pkl",
                    fmt::format("forbidden pickle global '{}.{}'", module, name));
  }
  for (const std::string type : {"DoubleStorage", "UntypedStorage", "QInt8Storage"}) {
    EXPECT_IO_ERROR(unpickle(kProto2 + global("torch", type) + "."),
                    fmt::format("unsupported tensor storage type 'torch.{}'", type));
  }
  EXPECT_IO_ERROR(unpickle(kProto2 + "c" + std::string(300, 'a') + "\nb\n."),
                  "overlong text line");
  EXPECT_IO_ERROR(unpickle(kProto2 + "cos"), "unterminated");
}

TEST(RestrictedUnpickler, RejectsMalformedTensors) {
  auto with = [](auto edit) {
    TensorSpec t;
    edit(t);
    return state_dict({{"w", tensor(t)}});
  };
  const std::string rebuild = global("torch._utils", "_rebuild_tensor_v2");
  const std::string odict = global("collections", "OrderedDict");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {with([](TensorSpec& t) { t.offset = -1; }), "negative storage offset -1"},
      {with([](TensorSpec& t) { t.size = {-2, 3}; t.stride = {3, 1}; }), "negative or overflows"},
      {with([](TensorSpec& t) { t.size = {int64_t{1} << 40, int64_t{1} << 40}; }),
       "size (1099511627776, 1099511627776) is negative or overflows"},
      {with([](TensorSpec& t) { t.stride = {1}; }), "size (2, 3) and stride (1) differ in length"},
      {with([](TensorSpec& t) { t.stride = {1, 2}; }),
       "size (2, 3) has stride (1, 2), not row-major contiguous"},
      {with([](TensorSpec& t) { t.offset = 1; }),
       "size (2, 3) at offset 1 runs past its storage '0' of 6 elements"},
      {with([](TensorSpec& t) { t.storage_numel = -1; }), "size is not a non-negative int"},
      {with([](TensorSpec& t) { t.offset = INT64_MAX; t.storage_numel = INT64_MAX; }),
       "runs past its storage"},
      {state_dict({{"w", rebuild + "(" + storage_pid({}) + "K\x00(K\x06t(K\x01t\x89t"s + "R"}}),
       "_rebuild_tensor_v2 takes 6 or 7 arguments, got 5"},
      {state_dict({{"w", rebuild + "(K\x00K\x00(K\x06t(K\x01t\x89Nt"s + "R"}}),
       "argument 0 of torch._utils._rebuild_tensor_v2 is an int, expected a storage"},
      {state_dict({{"w", rebuild + "(" + storage_pid({}) + "K\x00(K\x06t(K\x01tK\x01Nt"s + "R"}}),
       "argument 4 of torch._utils._rebuild_tensor_v2 is an int, expected a bool"},
      {state_dict({{"w", rebuild + "(" + storage_pid({}) + "K\x00("s + uni("6") +
                             "t(K\x01t\x89Nt" + "R"}}),
       "tensor size holds a str, expected ints"},
      {state_dict({{"w", rebuild + "(K\x01QK\x00)))\x89Nt"s + "R"}}),
       "persistent id is not ('storage', type, key, location, numel)"},
      {state_dict({{"w", rebuild + "((" + uni("module") + "NNNNtQK\x00)))\x89NtR"s}}),
       "persistent id is not"},
      {state_dict({{"w", rebuild + "((" + uni("storage") + uni("torch.FloatStorage") + uni("0") +
                             uni("cpu") + "K\x01tQK\x00)))\x89NtR"s}}),
       "persistent id names a str, expected a torch storage type"},
      {state_dict({{"w", rebuild + "((" + uni("storage") + global("torch", "FloatStorage") +
                             "K\x00"s + uni("cpu") + "K\x01tQK\x00)))\x89NtR"s}}),
       "storage key is an int, expected a str"},
      {state_dict({{"w", global("torch._tensor", "_rebuild_from_type_v2") + "(" + rebuild +
                             odict + rebuild_args({}) + "}tR"}}),
       "rebuilds a collections.OrderedDict, only plain tensors and parameters"},
      {state_dict({{"w", global("torch._tensor", "_rebuild_from_type_v2") + "(" +
                             global("torch._utils", "_rebuild_parameter") +
                             global("torch", "Tensor") + ")}tR"}}),
       "wraps torch._utils._rebuild_parameter, only torch._utils._rebuild_tensor_v2"},
      {state_dict({{"w", global("torch._utils", "_rebuild_parameter") + "(K\x01\x88Nt" + "R"}}),
       "argument 0 of torch._utils._rebuild_parameter is an int, expected a tensor"},
      {state_dict({{"w", global("torch._utils", "_rebuild_parameter") + "(" + tensor() + "t" +
                             "R"}}),
       "torch._utils._rebuild_parameter takes 3 arguments, got 1"},
  };
  for (const auto& entry : cases) {  // clang 14: lambdas cannot capture structured bindings
    const auto& pickle = entry.first;
    const auto& needle = entry.second;
    SCOPED_TRACE(needle);
    EXPECT_IO_ERROR(unpickle(pickle), "t.pkl", needle);
  }
}

TEST(RestrictedUnpickler, RejectsAnythingButAFlatDictOfTensors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {kProto2 + "].", "the checkpoint holds a list, expected a state dict"},
      {kProto2 + "K\x01.", "the checkpoint holds an int"},
      {state_dict({{"step", "K\x05"}}), "entry 'step' is an int, not a tensor"},
      {state_dict({{"model", "}"}}), "entry 'model' is a nested dict"},
      {kProto2 + "}(K\x01" + tensor() + "u.", "state dict key is an int, expected a str"},
      {state_dict({{"w", tensor()}, {"w", tensor()}}), "tensor 'w' appears twice"},
      {kProto2 + "}" + uni("x") + ")R.", "REDUCE calls a str, not an allowed global"},
      {kProto2 + global("collections", "OrderedDict") + "]R.", "REDUCE arguments are a list"},
      {kProto2 + global("collections", "OrderedDict") + "(K\x01tR.",
       "collections.OrderedDict is only supported with no arguments"},
      {kProto2 + global("torch", "FloatStorage") + ")R.", "global torch.FloatStorage cannot be called"},
      {kProto2 + global("torch", "Tensor") + ")R.", "global torch.Tensor cannot be called"},
      {kProto2 + "]]b.", "BUILD sets the state of a list"},
      // The stack machine itself.
      {"", "truncated pickle: ends at byte 0 without STOP"},
      {kProto2 + "}", "without STOP"},
      {kProto2 + ".", "pickle stack underflow at byte 2"},
      {kProto2 + "s", "pickle stack underflow"},
      {kProto2 + "}(Ns", "pickle stack underflow"},  // SETITEM may not reach below the MARK
      {kProto2 + "t", "needs a MARK"},
      {kProto2 + "h\x03.", "reads memo entry 3 that was never stored"},
      {kProto2 + "j" + le32(77) + ".", "memo entry 77"},
      {kProto2 + "q\x00."s, "underflow"},
      {kProto2 + "]NNs.", "SETITEM at byte 5 applies to a list, expected a dict"},
      {kProto2 + "}Na.", "APPEND at byte 4 applies to a dict, expected a list"},
      {kProto2 + "](NNu.", "SETITEMS at byte 6 applies to a list"},
      {kProto2 + "}(Nu.", "odd number of items"},
      {kProto2 + "}(Ne.", "APPENDS at byte 5 applies to a dict"},
      {kProto2 + "\x8a\x09" + std::string(9, '\x01') + ".", "LONG1 integer of 9 bytes"},
      {"\x80\x06}.", "unsupported pickle protocol 6"},
      {"\x80\x04\x95" + le64(1000) + "}.", "frame of 1000 bytes"},
      {kProto2 + "X" + le32(1000) + "ab.", "truncated"},
      {kProto2 + "\x8d" + le64(uint64_t{1} << 63) + "ab.", "truncated"},
      {kProto2 + "G\x01\x02", "truncated"},
  };
  for (const auto& entry : cases) {  // clang 14: lambdas cannot capture structured bindings
    const auto& pickle = entry.first;
    const auto& needle = entry.second;
    SCOPED_TRACE(needle);
    EXPECT_IO_ERROR(unpickle(pickle), "t.pkl", needle);
  }
}

// Hostile pickles that would grow without bound are stopped at fixed limits.
TEST(RestrictedUnpickler, CapsStackMarksMemoAndObjects) {
  EXPECT_IO_ERROR(unpickle(kProto2 + std::string(70000, '(')), "nests more than 65536 marks");
  std::string stack = kProto2 + "Nq\x00"s;
  for (int i = 0; i <= (1 << 20); ++i) stack += "h\x00"s;
  EXPECT_IO_ERROR(unpickle(stack), "pickle stack exceeds 1048576 entries");
  std::string memo = kProto2 + "N";
  for (uint32_t i = 0; i <= (1u << 20); ++i) memo += "r" + le32(i);
  EXPECT_IO_ERROR(unpickle(memo), "pickle memo exceeds 1048576 entries");
  std::string objects = kProto2 + "]";
  for (int i = 0; i <= (1 << 20); ++i) objects += "]a";
  EXPECT_IO_ERROR(unpickle(objects), "pickle builds more than 1048576 objects");
  // A list that contains itself is fine to build and harmless to reject.
  EXPECT_IO_ERROR(unpickle(kProto2 + "}(" + uni("w") + "]q\x00h\x00"s + "au."), "entry 'w' is a list");
}

TEST(RestrictedUnpickler, EveryTruncationIsAnError) {
  const std::string full = every_opcode_pickle();
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_IO_ERROR(unpickle(full.substr(0, n)), "t.pkl");
  }
}

// Any single corrupted byte gives a llama3::Error or tensors that stay inside their storage.
TEST(RestrictedUnpickler, CorruptedBytesNeverBreakTheInvariants) {
  const std::string full = every_opcode_pickle();
  size_t accepted = 0;
  for (size_t pos = 0; pos < full.size(); ++pos) {
    for (const int value : {0x00, 0x01, 0x7f, 0x80, 0xff, int{'('}, int{'t'}, int{'R'}, int{'h'},
                            int{'.'}, int{'b'}, int{'u'}}) {
      std::string bytes = full;
      bytes[pos] = static_cast<char>(value);
      try {
        for (const PickledTensor& t : unpickle(bytes)) {
          const auto numel = checked_numel(t.shape);
          ASSERT_TRUE(numel.has_value());
          EXPECT_GE(t.offset, 0);
          EXPECT_LE(static_cast<uint64_t>(t.offset) + *numel, static_cast<uint64_t>(t.storage_numel));
        }
        ++accepted;
      } catch (const llama3::Error&) {
      }
    }
  }
  EXPECT_GT(accepted, 0u);  // e.g. changed characters inside names
}

}  // namespace
}  // namespace llama3::io
