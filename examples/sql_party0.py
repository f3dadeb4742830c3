"""Secure SQL, party 0 (a shop: sales). Revenue per region of party 1's users, without either
side showing its rows. Needs a dealer; run in three terminals:

    pet dealer --listen 127.0.0.1:9104
    python examples/sql_party0.py --address 127.0.0.1:9103 --dealer 127.0.0.1:9104
    python examples/sql_party1.py --address 127.0.0.1:9103 --dealer 127.0.0.1:9104
"""

import argparse

import pandas as pd

from pet.mpc import Session
from pet.sql import query
from pet.transport import tcp

SQL = """SELECT u.region, COUNT(*) AS buyers, SUM(s.amount) AS revenue, AVG(s.amount * u.discount) AS avg_discounted
FROM sales AS s JOIN users AS u ON s.uid = u.uid WHERE s.amount > 10 GROUP BY u.region ORDER BY u.region"""

parser = argparse.ArgumentParser()
parser.add_argument("--address", default="127.0.0.1:9103")
parser.add_argument("--dealer", default="127.0.0.1:9104")
args = parser.parse_args()

sales = pd.DataFrame({"uid": range(100, 140), "amount": [float(5 + 7 * i % 50) for i in range(40)]})
with tcp.listen(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    with Session(0, peer, dealer=dealer) as session:
        report = query(session, SQL, {"sales": sales})
print("party 0 report:\n" + report.to_string(index=False))
