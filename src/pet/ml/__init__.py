"""Vertical federated machine learning.

Will hold ``VerticalXGBClassifier`` and ``VerticalXGBRegressor``: gradient-boosted trees
trained on rows aligned by PSI, features split between parties, labels at one party, with
gradients, histograms and split selection in MPC.
"""
