"""Vertical XGBoost, party 1 (features only); see xgb_party0.py."""

import argparse

from pet.demo.data import customer_tables
from pet.ml import VerticalXGBClassifier
from pet.mpc import Session
from pet.psi import align
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9105")
parser.add_argument("--dealer", default="127.0.0.1:9106")
args = parser.parse_args()

table = customer_tables()[1]  # id, region, f15..f29, spend
with tcp.connect(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    rows = align(peer, table, "id", party=1)
    X = rows.drop(columns=["id", "region", "spend"])
    with Session(1, peer, dealer=dealer) as session:
        model = VerticalXGBClassifier(session, n_estimators=5, max_depth=3).fit(X)
        scores = model.predict_proba(X)
print(f"party 1: {len(rows)} aligned rows, received scores: {scores is not None}")
