#!/usr/bin/env bash
# A stand-in for python:3.11-slim-bookworm where no image registry is reachable: Debian 12's own
# Python 3.11 in a minimal root file system made with debootstrap, imported as an image. The
# Dockerfiles take it as BASE_IMAGE; tests/deploy/test_stack.py builds it. Needs root and
# debootstrap (apt-get install debootstrap); about 30 s and 150 MB.
#
#   docker/standin-base.sh [TAG]            # default srbvae-standin/python:3.11-bookworm
#   docker build --build-arg BASE_IMAGE=srbvae-standin/python:3.11-bookworm ...
#
# What the official image has and Debian's Python lacks, added here: `python` and `pip` on PATH
# (python-is-python3, python3-pip) and pip allowed to install into the system (Debian marks it
# externally managed; the official image's Python lives in /usr/local and has no such mark).
# The Redis stand-in is this image with Debian's redis-server (docker/standin-redis.Dockerfile).
set -euo pipefail

tag=${1:-srbvae-standin/python:3.11-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/srbvae-standin.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3 \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    rm -f "$rootfs.log"
    exit 1
}
rm -f "$rootfs.log"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$tag" >/dev/null
echo "$tag"
