# Shared by the scripts in this folder: project root, logging, and the Python virtualenv.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Create a virtualenv (default .venv) with a Python >= 3.11 and install the pinned requirements
# file given into it, once per change of that file and the files it includes with -r (a stamp
# in the virtualenv holds their hash): ensure_venv REQUIREMENTS [VIRTUALENV].
ensure_venv() {
  local requirements="$1" venv="${2:-$VENV}" python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || die "$python not found: install Python 3.11+ (Debian: apt-get install -y python3 python3-venv)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$("$python" --version) is too old: Python 3.11+ is needed (set PYTHON=/path/to/python3.11)"
  if [[ ! -x "$venv/bin/python" ]]; then
    step "Creating the virtualenv ${venv#"$ROOT/"}"
    "$python" -m venv "$venv" || die "could not create $venv (Debian: apt-get install -y python3-venv)"
  fi
  local stamp="$venv/.installed-$(basename "$requirements")" want included
  included="$(sed -n 's/^-r[[:space:]]*//p' "$requirements" | sed "s|^|$(dirname "$requirements")/|")"
  # shellcheck disable=SC2086  # one path per line, none with spaces
  want="$(cat "$requirements" $included | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    step "Installing Python packages from ${requirements#"$ROOT/"} into ${venv#"$ROOT/"}"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$requirements"
    echo "$want" >"$stamp"
  fi
}

# The policy pack's own virtualenv (policies/venv, as policies/PulumiPolicy.yaml names it): the
# CLI serves the pack with it on every preview or update that passes --policy-pack policies.
ensure_policy_venv() {
  ensure_venv "$ROOT/policies/requirements.txt" "$ROOT/policies/venv"
}

# Install missing command-line tools from Debian's packages (as root), or say what to install.
# Arguments: command:package pairs, e.g. openssl:openssl mvn:maven; a command may be a path
# glob for tools off the PATH (/usr/lib/postgresql/*/bin/initdb:postgresql).
ensure_tools() {
  local pair tool missing=() packages=()
  for pair in "$@"; do
    tool="${pair%%:*}"
    if [[ $tool == /* ]]; then
      compgen -G "$tool" >/dev/null && continue
    else
      command -v "$tool" >/dev/null && continue
    fi
    missing+=("$tool"); packages+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    step "Installing ${packages[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null \
      || die "apt-get could not install: ${packages[*]}"
  else
    die "missing ${missing[*]}; install the Debian packages: ${packages[*]}"
  fi
}

# Install a pinned Go tool into build/bin (once per version): ensure_go_tool NAME MODULE@VERSION.
# Prints nothing when it is already there.
ensure_go_tool() {
  local name="$1" module="$2" bin="$ROOT/build/bin"
  local stamp="$bin/.$name-version"
  [[ -x "$bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$module" ]] && return 0
  command -v go >/dev/null || die "go not found: $name is installed with 'go install' (Debian: apt-get install -y golang-go)"
  step "Installing $name ($module, go install)"
  mkdir -p "$bin"
  GOBIN="$bin" go install "$module" || die "go install $module failed"
  echo "$module" >"$stamp"
}
