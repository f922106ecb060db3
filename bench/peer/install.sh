#!/usr/bin/env bash
# Installs the benchmark peer: llama.cpp's prebuilt CPU binaries, as packaged by node-llama-cpp
# (version pinned in bench/peer/package.json and package-lock.json), into the git-ignored .cache/peer.
# Idempotent and quiet when already installed. Not part of `make setup` or the test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."

SRC=bench/peer
DEST=${PEER_DIR:-.cache/peer}
# The stamp names the lock file's hash: a changed pin reinstalls.
STAMP="$DEST/.installed-$(sha256sum "$SRC/package-lock.json" | cut -c1-16)"
[ -f "$STAMP" ] && exit 0

# node-llama-cpp 3.x and its prebuilt binaries need Node >= 20 (Debian 12's own nodejs is 18).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "peer install: node and npm are required (Node >= 20)" >&2; exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "peer install: Node >= 20 is required, found $(node --version) at $(command -v node)." >&2
  echo "  Debian 12's nodejs package is 18; install Node 20+ (e.g. NodeSource) first." >&2
  exit 1
fi

echo "peer install: node-llama-cpp (prebuilt llama.cpp CPU binaries) into $DEST"
mkdir -p "$DEST"
rm -f "$DEST"/.installed-*
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
# NODE_LLAMA_CPP_SKIP_DOWNLOAD: never download or compile llama.cpp sources at install time; the
# prebuilt binaries come as npm packages. npm still installs every optional binary package whose
# os/cpu matches, ~700 MB of CUDA/Vulkan/arm builds that the CPU-only benchmark never loads.
# `npm install`, not `npm ci`: npm 11 leaves other platforms' optional packages out of the lock file
# and `npm ci` then refuses it as out of sync; `npm install` still installs the locked versions.
(cd "$DEST" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --loglevel=error >/dev/null)
touch "$STAMP"
