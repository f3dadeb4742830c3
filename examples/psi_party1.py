"""PSI, party 1 (the lab): see psi_party0.py. The lab's table (`breast_hetero_mini_server.csv`:
id, x3..x5) keeps its patients with ids 120..568."""

import argparse

import pandas as pd

from pet.data import reference_path
from pet.psi import align
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9100")
host, port = tcp.parse_address(parser.parse_args().address)

table = pd.read_csv(reference_path("PETML", "breast_hetero_mini_server.csv"))  # the lab's: id, x3..x5
table = table[table["id"] >= 120]  # the lab's patients
with tcp.connect(host, port) as channel:
    rows = align(channel, table, "id", party=1)
print(f"party 1: {len(rows)} of {len(table)} rows are common; first ids {list(rows['id'][:5])}")
