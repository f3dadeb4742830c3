"""Differential privacy.

Will hold privacy accountants (RDP, PLD, advanced composition), CSPRNG-backed
floating-point-safe mechanisms, and privacy budget as a schedulable resource (blocks, claims,
FCFS / RoundRobin / DPF schedulers, a durable SQLite ledger, a simulator).
"""
