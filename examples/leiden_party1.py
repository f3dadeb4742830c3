"""Private Leiden, party 1; see leiden_party0.py."""

import argparse

from pet.data import reference_path
from pet.graph import leiden, read_petml_json
from pet.mpc import Session
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9107")
parser.add_argument("--dealer", default="127.0.0.1:9108")
args = parser.parse_args()

nodes, edges = read_petml_json(reference_path("PETML", "karate_club_user_weight2.json"),
                               reference_path("PETML", "karate_club_local_nodes2.json"))
with tcp.connect(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    with Session(1, peer, dealer=dealer) as session:
        communities = leiden(session, nodes, edges, seed=0)
print("party 1 communities:", dict(sorted(communities.items())))
