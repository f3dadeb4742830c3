"""MPC, party 1: see mpc_party0.py."""

import argparse

import numpy as np

import pet.mpc as mpc
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9101")
parser.add_argument("--dealer", default="127.0.0.1:9102")
args = parser.parse_args()

salaries = np.array([58_000.0, 60_000.0, 49_900.0])  # party 1's private values
with tcp.connect(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    with mpc.Session(1, peer, dealer=dealer) as session:
        theirs = session.share(None, owner=0)
        mine = session.share(salaries, owner=1)
        richer = session.reveal(theirs > mine)
        total = session.reveal((theirs + mine).sum())
print(f"party 1: party 0 larger at {richer.astype(bool).tolist()}; total of all six salaries {float(np.ravel(total)[0]):.2f}")
