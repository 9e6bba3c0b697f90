#!/usr/bin/env bash
# A static Linux binary of keyctl, built from the locked dependencies, with its checksum:
#   dist/keyctl-<version>-x86_64-linux
#   dist/keyctl-<version>-x86_64-linux.sha256   (check with: cd dist && sha256sum -c *.sha256)
#
# A static-PIE glibc build (`-C target-feature=+crt-static`), which the stock Rust toolchain
# does offline: no musl target or C cross-compiler needed. `--target` keeps the build scripts
# and proc-macros dynamic (they run on this machine); only keyctl itself is static. The binary
# needs nothing from the machine it runs on (no libc, no /etc files): it runs in a `FROM
# scratch` image (Containerfile).
#
# Environment: DIST (output directory, default dist/ in the repository), CARGO_TARGET_DIR
# (honoured: cargo is asked where it builds). Prints the binary's path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
dist=${DIST:-dist}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || { echo "build-static: no version in Cargo.toml" >&2; exit 1; }
name="keyctl-$version-x86_64-linux"

say() { printf 'build-static: %s\n' "$*" >&2; }

say "building keyctl $version for $target (static, --locked, release)"
# Extra RUSTFLAGS of the caller are kept; symbols are stripped (the binary is a download).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release --locked --quiet --target "$target" --bin keyctl >&2

target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || { echo "build-static: cargo metadata gave no target directory" >&2; exit 1; }
built="$target_dir/$target/release/keyctl"
[ -x "$built" ] || { echo "build-static: $built is missing" >&2; exit 1; }

# Static, or refuse: a dynamic binary would fail on a machine without this glibc.
if ! ldd "$built" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
  echo "build-static: $built is not static:" >&2
  ldd "$built" >&2 || true
  exit 1
fi
if command -v file >/dev/null 2>&1; then
  file -b "$built" | grep -Eq 'static(-pie)? linked' || {
    echo "build-static: file(1) does not call $built static: $(file -b "$built")" >&2
    exit 1
  }
fi

mkdir -p "$dist"
install -m 0755 "$built" "$dist/$name"
(cd "$dist" && sha256sum "$name" >"$name.sha256")
"$dist/$name" --version >&2
say "$(cat "$dist/$name.sha256")"
say "$(file -b "$dist/$name" 2>/dev/null || echo static)"
echo "$dist/$name"
