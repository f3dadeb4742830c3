#!/bin/sh
# Create the virtual environment of the benchmark PEERS (never a dependency of pet):
# SecretFlow SPU 0.9.5 for the same-run comparison with its dealer-free CHEETAH protocol.
#
#   sh benchmarks/peers/setup.sh [VENV_DIR]        # default: ../peers-venv next to the checkout
#   PET_PEERS_PYTHON=VENV_DIR/bin/python pytest benchmarks/test_mpc.py --benchmark-only -k "cheetah or dealer_free"
#
# spu 0.9.5 publishes wheels for CPython 3.9-3.11 on x86_64/aarch64 Linux and macOS: run this with
# such a python3 (PYTHON=python3.11 sh benchmarks/peers/setup.sh picks one explicitly).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-"$here/../../../peers-venv"}
python=${PYTHON:-python3}
"$python" -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 9) <= v <= (3, 11) else
    "spu 0.9.5 needs CPython 3.9-3.11, this is %d.%d: set PYTHON=python3.11" % v)'
"$python" -m venv "$venv"
"$venv/bin/pip" install -q spu==0.9.5
"$venv/bin/python" -c 'import spu; print("spu", spu.__version__)'
echo "export PET_PEERS_PYTHON=$(cd "$venv" && pwd)/bin/python"
