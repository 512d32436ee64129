"""Exact path-dependent TreeSHAP for tree ensembles, precomputed per leaf.

`model.py` is the framework-neutral tree form the parsers (`lightgbm.py`, `xgboost.py`,
`sklearn.py`) produce; `tables.py` turns it into per-leaf lookup tables; `kernel.py` walks a
batch of rows through every split once and sums the looked-up contributions.
"""
