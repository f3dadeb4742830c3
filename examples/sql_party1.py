"""Secure SQL, party 1 (a bank: users with region and discount); see sql_party0.py."""

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

users = pd.DataFrame({"uid": range(120, 170), "region": [["north", "south", "east"][i % 3] for i in range(50)],
                      "discount": [0.05 * (i % 4) for i in range(50)]})
with tcp.connect(*tcp.parse_address(args.address)) as peer, tcp.connect(*tcp.parse_address(args.dealer)) as dealer:
    with Session(1, peer, dealer=dealer) as session:
        report = query(session, SQL, {"users": users})
print("party 1 report:\n" + report.to_string(index=False))
