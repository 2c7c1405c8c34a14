#!/bin/sh
# grayEnv: make `graysteps $GRAYSTEPS_VERSION` available in the venv $GRAYSTEPS_VENV.
# Every value arrives as an environment variable and is only ever used quoted.
set -eu
want="graysteps $GRAYSTEPS_VERSION"
have=$("$GRAYSTEPS_VENV/bin/graysteps" --version 2>/dev/null || true)
if [ "$have" = "$want" ]; then
    echo "grayEnv: $want already in $GRAYSTEPS_VENV"
    exit 0
fi
"$GRAYSTEPS_PYTHON" -m venv "$GRAYSTEPS_VENV"
"$GRAYSTEPS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -- "$GRAYSTEPS_PIP_SOURCE"
have=$("$GRAYSTEPS_VENV/bin/graysteps" --version)
if [ "$have" != "$want" ]; then
    echo "grayEnv: $GRAYSTEPS_PIP_SOURCE installed '$have' but this library is $want; point GRAYSTEPS_PIP_SOURCE at $GRAYSTEPS_VERSION" >&2
    exit 1
fi
echo "grayEnv: installed $have into $GRAYSTEPS_VENV"
