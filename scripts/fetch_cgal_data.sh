#!/usr/bin/env bash
# Fetch the real test meshes and point sets of Debian's libcgal-demo into an ignored cache.
# Only the .deb is downloaded and unpacked; the package is never installed (it would pull ~70
# packages). Usage: scripts/fetch_cgal_data.sh [CACHE_DIR]   (default: .cache/cgal)
set -euo pipefail
cache=${1:-.cache/cgal}
if [ -f "$cache/data/meshes/armadillo.off" ]; then
    echo "CGAL data already in $cache/data"
    exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download libcgal-demo >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get download libcgal-demo >/dev/null 2>&1 || { echo "could not download libcgal-demo; tests that need it will be skipped" >&2; exit 0; }
fi
dpkg -x libcgal-demo_*.deb unpacked
cd - >/dev/null
tar xzf "$work"/unpacked/usr/share/doc/libcgal-dev/data.tar.gz -C "$cache" data/meshes data/points_3
echo "CGAL data in $cache/data"
