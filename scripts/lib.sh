# Shared helpers for scripts/: install what the project needs on Debian, once.
# shellcheck shell=bash

APT_PACKAGES=(frr bird2 gobgpd clang llvm libbpf-dev iproute2 nftables iputils-ping jq)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: $1 needs root (network namespaces, raw sockets, BPF); run it with sudo" >&2
        exit 1
    fi
}

install_packages() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust 1.95 (rustup) first" >&2
        exit 1
    fi
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
}
