#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or fail with one clear sentence.
# The lock file is resolved for 3.12, so 3.12 is preferred, then any newer version.
# Order within each pass: interpreters on PATH, then pyenv-managed versions (pyenv shims
# refuse to run unless PYENV_VERSION is set, so it is set per candidate).
set -u
check() {  # $1 = "exact" (3.12 only) or "any" (>= 3.12); rest = command
    local mode=$1; shift
    "$@" -c "import sys; v = sys.version_info[:2]; sys.exit(0 if (v == (3, 12) if '$mode' == 'exact' else v >= (3, 12)) else 1)" >/dev/null 2>&1
}
for mode in exact any; do
    for cand in python3.12 python3 python3.13 python3.14; do
        if command -v "$cand" >/dev/null 2>&1 && check "$mode" "$cand"; then
            "$cand" -c 'import sys; print(sys.executable)'; exit 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for ver in $(pyenv versions --bare 2>/dev/null | sort -V); do
            if PYENV_VERSION="$ver" check "$mode" python3; then
                PYENV_VERSION="$ver" python3 -c 'import sys; print(sys.executable)'; exit 0
            fi
        done
    fi
done
echo "error: retrosim needs Python 3.12 or newer and none was found on PATH or through pyenv; install Python 3.12 (for example 'pyenv install 3.12') and run make again." >&2
exit 1
