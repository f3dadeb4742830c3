"""MPC, party 0: compare salaries without revealing them (Yao's millionaires), and compute
the total on secret shares. Needs a dealer; run in three terminals:

    pet dealer --listen 127.0.0.1:9102
    python examples/mpc_party0.py --address 127.0.0.1:9101 --dealer 127.0.0.1:9102
    python examples/mpc_party1.py --address 127.0.0.1:9101 --dealer 127.0.0.1:9102
"""

import argparse

import numpy as np

import pet.mpc as mpc
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9101")
parser.add_argument("--dealer", default="127.0.0.1:9102")
args = parser.parse_args()

salaries = np.array([52_000.0, 61_500.0, 47_250.0])  # party 0's private values
with tcp.listen(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    with mpc.Session(0, peer, dealer=dealer) as session:
        mine = session.share(salaries, owner=0)
        theirs = session.share(None, owner=1)
        richer = session.reveal(mine > theirs)          # per position: is party 0's larger?
        total = session.reveal((mine + theirs).sum())   # only the grand total
print(f"party 0: mine larger at {richer.astype(bool).tolist()}; total of all six salaries {float(np.ravel(total)[0]):.2f}")
