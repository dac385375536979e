#!/usr/bin/env bash
# Builds the local Python base image that tests, the demo and CI use, since no registry can be reached:
# a minimal Debian bookworm with python3, FastAPI and uvicorn from Debian's packages, imported into the
# local daemon. Idempotent: it does nothing when the image already exists (set FORCE=1 to rebuild).
set -euo pipefail

image="${RFENV_BASE_IMAGE:-rfenv-python:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="${DEBIAN_SUITE:-bookworm}"

if ! docker info >/dev/null 2>&1; then
  echo "base-image: the Docker daemon is not reachable; start it (or set DOCKER_HOST) and retry" >&2
  exit 1
fi
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base-image: $image already exists" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base-image: installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/rfenv-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap $suite into $root (a few minutes)" >&2
debootstrap --variant=minbase \
  --include=python3,python3-fastapi,python3-uvicorn,python3-pip,ca-certificates \
  "$suite" "$root" "$mirror" >&2
# Trim what an image never needs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "base-image: built $image" >&2
