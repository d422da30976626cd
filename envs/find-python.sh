#!/bin/sh
# Print the path of a Python >= 3.11 for `make` to build .venv with: $PYTHON when
# it is set, otherwise the first of python3.13, python3.12, python3.11 and python3
# that runs and is new enough.  When there is none, say which versions were
# found and how to get a newer one, and exit 1.
need_major=3
need_minor=11
found=""
for candidate in ${PYTHON:-python3.13 python3.12 python3.11 python3}; do
    # A command that is missing or does not run (a pyenv shim of a version that
    # is not selected) is skipped.
    version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    major=${version%%.*}
    minor=${version#*.}
    case "$major.$minor" in
        *[!0-9.]* | .* | *. ) found="$found $candidate answered '$version';"; continue ;;
    esac
    if [ "$major" -gt "$need_major" ] || { [ "$major" -eq "$need_major" ] && [ "$minor" -ge "$need_minor" ]; }; then
        command -v "$candidate"
        exit 0
    fi
    found="$found $candidate is Python $version;"
done
{
    echo "error: this project needs Python >= $need_major.$need_minor, and found none."
    echo "  tried: ${PYTHON:-python3.13 python3.12 python3.11 python3}"
    echo "  found:${found:- none of them runs}"
    echo "  Install Python $need_major.$need_minor or newer (Debian/Ubuntu: apt-get install python3.11 python3.11-venv;"
    echo "  macOS: brew install python@3.11; any system: pyenv install 3.11 or conda create -n py311 python=3.11),"
    echo "  then run make again, or name it: make PYTHON=/path/to/python3.11"
} >&2
exit 1
