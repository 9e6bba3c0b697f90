#!/usr/bin/env bash
# The OCI image keyctl:<version> (Containerfile), from the static binary that
# scripts/build-static.sh makes. Offline: FROM scratch pulls nothing.
#   scripts/build-image.sh [TAG]         (default keyctl:<version>; DOCKER names the client)
set -euo pipefail
cd "$(dirname "$0")/.."
docker=${DOCKER:-docker}
binary=$(DIST=dist scripts/build-static.sh)
version=${binary##*/keyctl-}
version=${version%-x86_64-linux}
tag=${1:-keyctl:$version}
"$docker" build -f Containerfile --build-arg "VERSION=$version" -t "$tag" .
echo "$tag"
