#!/usr/bin/env bash
# The two commands of the README, for a fresh Debian/Ubuntu machine with Rust:
#   ./dev.sh serve [--alpaca-sim]   install PostgreSQL if missing, then run Paddock
#   ./dev.sh test                   install PostgreSQL, Chromium, chromedriver, haproxy and openssl
#                                   if missing, then run every test
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    echo "dev.sh: apt-get update" >&2
    as_root apt-get update -qq
    apt_updated=1
  fi
  echo "dev.sh: installing $*" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

ensure_postgres() {
  have_postgres || apt_install postgresql
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "dev.sh: running as root needs the 'postgres' OS user (PostgreSQL refuses to run as root)" >&2
    exit 1
  fi
}

ensure_chromium() {
  if [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
  elif ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium-driver
  fi
}

# The replica test puts two servers behind Debian's haproxy, with TLS made by openssl.
ensure_proxy_tools() {
  local missing=()
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

case "${1:-}" in
  serve)
    shift
    ensure_postgres
    exec cargo run --release --bin paddock -- serve "$@"
    ;;
  test)
    shift
    ensure_postgres
    ensure_chromium
    ensure_proxy_tools
    exec cargo test "$@"
    ;;
  *)
    echo "usage: ./dev.sh serve [--alpaca-sim] | ./dev.sh test [cargo test args]" >&2
    exit 2
    ;;
esac
