"""PSI, party 0 (the clinic): align its table with party 1's (the lab's) on `id`, over TCP.

The data are the reference system's breast-cancer mini tables (569 patients, ids 0..568):
the clinic holds the diagnoses (`breast_hetero_mini_client.csv`: id, y, x0..x2), the lab
other measurements (`breast_hetero_mini_server.csv`: id, x3..x5). Each party knows only part
of the patients -- the clinic ids 0..449, the lab ids 120..568 -- so 330 are common: each
party learns which of its own rows those are (and the other's table size), nothing more.

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

table = pd.read_csv(reference_path("PETML", "breast_hetero_mini_client.csv"))  # the clinic's: id, y, x0..x2
table = table[table["id"] < 450]  # the clinic's patients
with tcp.listen(host, port) as channel:
    rows = align(channel, table, "id", party=0)
print(f"party 0: {len(rows)} of {len(table)} rows are common; first ids {list(rows['id'][:5])}")
