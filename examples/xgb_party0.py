"""Vertical XGBoost, party 0 (the label party): the breast-cancer data split by columns —
party 0 has 15 features and the diagnosis, party 1 the other 15. Rows are aligned by PSI on
the patient id first. Needs a dealer; run in three terminals:

    pet dealer --listen 127.0.0.1:9106
    python examples/xgb_party0.py --address 127.0.0.1:9105 --dealer 127.0.0.1:9106
    python examples/xgb_party1.py --address 127.0.0.1:9105 --dealer 127.0.0.1:9106
"""

import argparse

from sklearn.metrics import roc_auc_score

from pet.demo.data import customer_tables
from pet.ml import VerticalXGBClassifier
from pet.mpc import Session
from pet.psi import align
from pet.transport import tcp

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9105")
parser.add_argument("--dealer", default="127.0.0.1:9106")
args = parser.parse_args()

table = customer_tables()[0]  # id, f00..f14, label
with tcp.listen(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    rows = align(peer, table, "id", party=0)
    X, y = rows.drop(columns=["id", "label"]), rows["label"]
    with Session(0, peer, dealer=dealer) as session:
        model = VerticalXGBClassifier(session, n_estimators=5, max_depth=3).fit(X, y)
        scores = model.predict_proba(X)[:, 1]
print(f"party 0: {len(rows)} aligned rows, training AUC {roc_auc_score(y, scores):.3f}")
