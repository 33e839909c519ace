#!/usr/bin/env bash
# The system packages the tests use (Debian/Ubuntu, apt-get): a real one-node SLURM cluster
# (slurmctld slurmd slurm-client munge; scripts/slurm_local.sh) and headless Chromium (the
# report's browser tests). Used by `make system-deps`, `make test` (--note) and .ci/run.
#
# Usage: scripts/system_deps.sh [--check [GROUP] | --note]
#   (none)         install the missing ones; needs root (exit 1 without it)
#   --check [GROUP] list the missing ones of GROUP (slurm, browser; default: all); exit 1 if any
#   --note         say which are missing and the command that installs them (exit 0): the
#                  tests that need them skip, naming it, except in CI, where they fail
set -euo pipefail

SLURM=(slurmctld slurmd slurm-client munge)
BROWSER=(chromium)
PACKAGES=("${SLURM[@]}" "${BROWSER[@]}")
if [[ "$(id -u)" == 0 ]]; then ENABLE="make system-deps"; else ENABLE="sudo make system-deps"; fi

log() { echo "[system-deps] $*"; }

if [[ "${1:-}" == --check ]]; then
    case "${2:-all}" in
        slurm) PACKAGES=("${SLURM[@]}") ;;
        browser) PACKAGES=("${BROWSER[@]}") ;;
        all) ;;
        *) echo "usage: $0 --check [slurm|browser]" >&2; exit 2 ;;
    esac
fi

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
    --note)
        [[ ${#missing[@]} -eq 0 ]] && exit 0
        log "missing: ${missing[*]}; the SLURM and browser tests that need them will be" \
            "skipped (\`$ENABLE\` enables them), or fail in CI"
        exit 0 ;;
    "") ;;
    *) echo "usage: $0 [--check [slurm|browser] | --note]" >&2; exit 2 ;;
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
