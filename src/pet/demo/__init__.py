"""``pet demo``: a two-party end-to-end run on embedded data.

:mod:`pet.demo.data` builds the public demo tables, :mod:`pet.demo.steps` holds the steps
(link check, PSI alignment, DP release charged to a budget ledger, and the MPC steps), and
:mod:`pet.demo.party` runs one party's process. The command line is in :mod:`pet.cli.demo`.
"""
