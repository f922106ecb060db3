#!/usr/bin/env bash
# Installs the build into a temporary prefix, moves the prefix elsewhere (an installed tree must
# not depend on where it was installed nor on the source tree), then:
#  - the installed binary finds its data files under <prefix>/share/llama3 and runs;
#  - a program built against the installed CMake package (find_package(llama3)) generates tokens.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/staging" >/dev/null
mv "$work/staging" "$work/moved"
prefix=$work/moved
export LLAMA3_CACHE=$work/cache
unset LLAMA3_DATA_DIR LLAMA3_TOKENIZER

cd "$work"
paths=$("$prefix/bin/llama3" paths)
echo "$paths"
grep -qx "data: $prefix/share/llama3" <<<"$paths" || { echo "FAIL: the installed binary does not use its share/"; exit 1; }
grep -qx "tokenizer: $prefix/share/llama3/tokenizer/tokenizer.json" <<<"$paths" || { echo "FAIL: tokenizer path"; exit 1; }
ids=$("$prefix/bin/llama3" tokenize --text "Hello world")
echo "tokenize: $ids"
grep -q "9906" <<<"$ids" || { echo "FAIL: the installed binary cannot tokenize with its own tokenizer"; exit 1; }

# The consumer is built with the build's compiler, and its sanitizers when the build has them
# (an ASan library needs the ASan runtime of the same compiler in the program).
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
flags=()
if grep -qE '^LLAMA3_(SANITIZE|FUZZ):BOOL=ON' "$build/CMakeCache.txt"; then
  flags=(-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined)
fi
cmake -S "$src/tests/install/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" "${flags[@]}" >/dev/null
cmake --build "$work/consumer" >/dev/null
out=$("$work/consumer/consumer")
echo "$out"
grep -q "^model Llama-3.2-1B, [0-9]* prompt tokens, 4 generated: " <<<"$out" || { echo "FAIL: consumer output"; exit 1; }
echo "PASS"
