#!/usr/bin/env bash
# An aarch64 Debian bookworm root with Debian's own python3, numpy, h5py and
# the build path's other imports, for benchmarks/cross_env.py to run under
# qemu-user: qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.
#
#   bash benchmarks/arm64_root.sh [ROOT]      (default .cross/arm64-root, gitignored)
#
# debootstrap --foreign only downloads the packages and unpacks the base; every
# downloaded .deb is then unpacked with dpkg-deb -x (no maintainer scripts run,
# nothing runs inside the root).  What the scripts would have done and the build
# path needs is done by hand: the libblas.so.3 and liblapack.so.3 alternatives
# point at Debian's reference BLAS and LAPACK (OpenBLAS is there too, in
# openblas-pthread/, chosen by LD_LIBRARY_PATH).  Needs root, debootstrap and
# qemu-user-static (apt-get install debootstrap qemu-user-static); exits 0 with
# a message, leaving no root, when they cannot be had.
set -euo pipefail
ROOT=${1:-.cross/arm64-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-numpy,python3-h5py,python3-yaml,python3-tqdm,python3-jsonschema,python3-threadpoolctl,python3-matplotlib,python3-scipy,python3-skimage,libopenblas0-pthread

# .ready holds the package list it was made with: a root made with another list is made again
if [ -e "$ROOT/.ready" ] && [ "$(cat "$ROOT/.ready")" = "$PACKAGES" ]; then echo "aarch64 root ready: $ROOT"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "aarch64 root: skipped, needs root for debootstrap"; exit 0; fi
for tool in debootstrap qemu-aarch64-static; do
  if ! command -v "$tool" >/dev/null; then
    echo "aarch64 root: installing $tool"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool/qemu-aarch64-static/qemu-user-static}" >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool/qemu-aarch64-static/qemu-user-static}" >/dev/null 2>&1
    } || { echo "aarch64 root: skipped, $tool cannot be installed"; exit 0; }
  fi
done

rm -rf "$ROOT"
mkdir -p "$(dirname "$ROOT")"
if ! debootstrap --foreign --arch=arm64 --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1; then
  echo "aarch64 root: skipped, debootstrap failed (see $ROOT.log)"; rm -rf "$ROOT"; exit 0
fi
for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$ROOT"
done
LIB="$ROOT/usr/lib/aarch64-linux-gnu"
ln -sfn blas/libblas.so.3 "$LIB/libblas.so.3"
ln -sfn lapack/liblapack.so.3 "$LIB/liblapack.so.3"
rm -f "$ROOT"/var/cache/apt/archives/*.deb
if ! qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python3" -c "import numpy, h5py, yaml, tqdm, jsonschema, threadpoolctl, matplotlib, scipy, skimage; print('aarch64 python', numpy.__version__)"; then
  echo "aarch64 root: its python does not run under qemu-aarch64-static; left in $ROOT for a look"; exit 0
fi
echo "$PACKAGES" > "$ROOT/.ready"
echo "aarch64 root ready: $ROOT"
