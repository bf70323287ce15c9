# Shared by the scripts in this folder: project root, logging, the Python virtualenv, the
# tools they need, and running Maven for the jars in build/.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# shellcheck disable=SC2034  # for the scripts that source this file
PY="$VENV/bin/python"
# The script that sourced this file, naming it in the messages of the Maven scripts, which
# scripts/up and scripts/test run among their own.
SCRIPT_NAME="$(basename "$0")"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# remove_on_exit PATH...: removed when the script exits, however it exits (one EXIT trap holds
# them all, so a script does not set its own).
REMOVE_ON_EXIT=()
remove_on_exit() {
  REMOVE_ON_EXIT+=("$@")
  trap 'rm -rf -- "${REMOVE_ON_EXIT[@]}"' EXIT
}

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
  local stamp want included
  stamp="$venv/.installed-$(basename "$requirements")"
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

# What fetches and builds the jars in build/, as command:package pairs (Debian) for
# ensure_tools and need_tools: Maven and a Java 17 runtime fetch jars; building this
# project's MQTT source also needs the JDK's compiler.
# shellcheck disable=SC2034  # for the scripts that source this file
MAVEN_TOOLS=(mvn:maven java:openjdk-17-jre-headless)
# shellcheck disable=SC2034
JDK_TOOLS=(javac:openjdk-17-jdk-headless)

# missing_tools PAIR...: of the command:package pairs, the commands not found, in MISSING, and
# the packages that provide them, each once, in MISSING_PACKAGES; true when any is missing. A
# command may be a path glob for tools off the PATH (/usr/lib/postgresql/*/bin/initdb:postgresql).
missing_tools() {
  local pair tool package
  MISSING=() MISSING_PACKAGES=()
  for pair in "$@"; do
    tool="${pair%%:*}" package="${pair#*:}"
    if [[ $tool == /* ]]; then
      compgen -G "$tool" >/dev/null && continue
    else
      command -v "$tool" >/dev/null && continue
    fi
    MISSING+=("$tool")
    [[ " ${MISSING_PACKAGES[*]} " == *" $package "* ]] || MISSING_PACKAGES+=("$package")
  done
  ((${#MISSING[@]}))
}

# Install missing command-line tools from Debian's packages (as root), or say what to install.
# Arguments: command:package pairs, e.g. openssl:openssl mvn:maven (see missing_tools).
ensure_tools() {
  missing_tools "$@" || return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    step "Installing ${MISSING_PACKAGES[*]} (apt-get)"
    if ! { apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING_PACKAGES[@]}" >/dev/null; }; then
      die "apt-get could not install: ${MISSING_PACKAGES[*]}"
    fi
  else
    die "missing ${MISSING[*]}; install the Debian packages: ${MISSING_PACKAGES[*]}"
  fi
}

# need_tools WHY PAIR...: like ensure_tools, but installs nothing (the Maven scripts run
# standalone, unprivileged): ends the script saying which commands are missing, why they are
# needed, and the Debian packages that provide them.
need_tools() {
  local why="$1"
  shift
  missing_tools "$@" || return 0
  die "$SCRIPT_NAME: ${MISSING[*]} not found ($why). On Debian: apt-get install -y ${MISSING_PACKAGES[*]}"
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

# pom_value POM PATH: a value of a pom.xml by its element path under <project> (version,
# properties/kafka.version): the versions the Maven scripts fetch are pinned in their poms,
# and read from there only.
pom_value() {
  python3 - "$1" "$2" <<'PY' || die "$SCRIPT_NAME: ${1#"$ROOT/"} has no <$2> (an element path under <project>)"
import sys, xml.etree.ElementTree as ET
path = "/".join("{http://maven.apache.org/POM/4.0.0}" + name for name in sys.argv[2].split("/"))
node = ET.parse(sys.argv[1]).find(path)
if node is None or not (node.text or "").strip():
    sys.exit(1)
print(node.text.strip())
PY
}

# run_maven WHAT POM ARGUMENT...: Maven in batch mode on POM, quietly: its output goes to a log,
# and what shows is one line per plugin goal as Maven starts it (the progress), then the time
# taken. If Maven fails, the log's errors and warnings (else its last 40 lines) are shown and
# the script ends with "Maven could not WHAT" (WHAT: e.g. "build connectors/mqtt-source").
run_maven() {
  local what="$1" pom="$2" log start=$SECONDS
  shift 2
  log="$(mktemp)"
  remove_on_exit "$log"
  echo "$SCRIPT_NAME: running Maven to $what"
  if ! mvn -B -ntp -f "$pom" "$@" 2>&1 | tee "$log" \
    | sed -un 's/^\[INFO\] --- \(.*\) @ .* ---$/  \1/p'; then
    grep -E '^\[(ERROR|WARNING)\]' "$log" >&2 || tail -n 40 "$log" >&2
    die "$SCRIPT_NAME: Maven could not $what"
  fi
  echo "$SCRIPT_NAME: Maven finished in $((SECONDS - start)) s"
}

# new_staging DIR: DIR emptied (and removed on exit): Maven writes there, and replace_path moves
# the result into build/ only once it is complete and checked.
new_staging() {
  rm -rf "$1"
  mkdir -p "$1"
  remove_on_exit "$1"
}

# replace_path NEW TARGET: NEW (a file or a directory) takes TARGET's place. Replaced, never
# merged: a plugin directory or a classpath with two versions of a library breaks. Two renames,
# so TARGET is at no moment half copied.
replace_path() {
  local new="$1" target="$2" old="$2.old"
  remove_on_exit "$old"
  rm -rf "$old"
  mkdir -p "$(dirname "$target")"
  [[ ! -e $target ]] || mv "$target" "$old"
  mv "$new" "$target"
  rm -rf "$old"
}

# unchanged PATH WHY: what a Maven script says when PATH in build/ is already what it would make.
unchanged() { echo "$SCRIPT_NAME: nothing changed: ${1#"$ROOT/"} $2"; }

# describe PATH WHAT: the last line of a Maven script: PATH with its size (and for a directory,
# its number of jars) and WHAT it holds, e.g. "version 2.5.0".
describe() {
  if [[ -d $1 ]]; then
    echo "$1 $(find "$1" -maxdepth 1 -name '*.jar' | wc -l) jars $(du -sb "$1" | cut -f1) bytes $2"
  else
    echo "$1 $(stat -c %s "$1") bytes $2"
  fi
}
