#!/usr/bin/env bash
# The system packages the tests use (Debian/Ubuntu, apt-get): a real one-node SLURM cluster
# (slurmctld slurmd slurm-client munge; scripts/slurm_local.sh) and headless Chromium (the
# report's browser tests). Used by `make system-deps`, `make test` and .ci/run.
#
# Usage: scripts/system_deps.sh [--check | --if-root]
#   (none)     install the missing ones; needs root (exit 1 without it)
#   --check    list the missing ones; exit 1 if any
#   --if-root  as root, install the missing ones; otherwise say which test groups
#              will be skipped and the command that enables them (exit 0)
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge chromium)
ENABLE="sudo make system-deps"

log() { echo "[system-deps] $*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done

case "${1:-}" in
    --check)
        [[ ${#missing[@]} -eq 0 ]] && { log "all installed: ${PACKAGES[*]}"; exit 0; }
        log "missing: ${missing[*]}"
        exit 1 ;;
    --if-root)
        [[ ${#missing[@]} -eq 0 ]] && exit 0
        if [[ "$(id -u)" != 0 ]]; then
            log "missing: ${missing[*]}; the SLURM and browser tests that need them will be" \
                "skipped (\`$ENABLE\` enables them)"
            exit 0
        fi ;;
    "") ;;
    *) echo "usage: $0 [--check | --if-root]" >&2; exit 2 ;;
esac

[[ ${#missing[@]} -eq 0 ]] && { log "all installed: ${PACKAGES[*]}"; exit 0; }
if [[ "$(id -u)" != 0 ]]; then
    log "ERROR: installing ${missing[*]} needs root: $ENABLE" >&2
    exit 1
fi
command -v apt-get >/dev/null || {
    log "ERROR: no apt-get here: install ${missing[*]} with this system's package manager" >&2
    exit 1
}
log "installing ${missing[*]} (apt-get, ~1-2 min)"
export DEBIAN_FRONTEND=noninteractive
apt_log=$(mktemp)
trap 'rm -f "$apt_log"' EXIT
apt_install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; }
# Package lists may be stale or absent in a fresh container: refresh them only on failure.
if ! apt_install; then
    log "apt-get install failed; apt-get update and one more try"
    apt-get update -q >"$apt_log" 2>&1 && apt_install || {
        tail -n 20 "$apt_log" >&2
        log "ERROR: apt-get could not install ${missing[*]}" >&2
        exit 1
    }
fi
log "installed ${missing[*]}"
