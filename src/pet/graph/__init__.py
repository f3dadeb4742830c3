"""Privacy-preserving graph analytics.

Will hold ``leiden(session, nodes, edges, *, resolution=1.0, seed=0)``: Leiden community
detection on a graph whose nodes are split between two parties, with every quantity that
depends on the other party's private edges computed in MPC.
"""
