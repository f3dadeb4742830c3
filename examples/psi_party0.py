"""PSI, party 0 (the clinic): align its table with party 1's on `id`, over TCP.

Run in two terminals (party 0 first or second, either works):
    python examples/psi_party0.py --address 127.0.0.1:9100
    python examples/psi_party1.py --address 127.0.0.1:9100
"""

import argparse

import pandas as pd

from pet.data import reference_path
from pet.psi import align
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9100")
host, port = tcp.parse_address(parser.parse_args().address)

table = pd.read_csv(reference_path("PETML", "breast_hetero_mini_server.csv"))
with tcp.listen(host, port) as channel:
    rows = align(channel, table, "id", party=0)
print(f"party 0: {len(rows)} of {len(table)} rows are common; first ids {list(rows['id'][:5])}")
