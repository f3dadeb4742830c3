"""Vertical XGBoost, party 0 (the label party): the demo's customer tables
(`pet.demo.data.customer_tables`, built from scikit-learn's breast-cancer data). Party 0 (a
clinic) holds 480 patients with features f00..f14 and the diagnosis `label`; party 1 (a lab)
holds 470 patients with features f15..f29 (and `region`, `spend`, not used here). PSI on the
patient `id` first keeps the 400 patients both hold, in one joint order; the model is then
trained on all 30 features, and only party 0 gets the scores. Needs a dealer; run in three
terminals:

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
