"""Vertical federated XGBoost: :class:`VerticalXGBClassifier`, :class:`VerticalXGBRegressor`.

Two parties hold the same rows (aligned with :func:`pet.psi.align`), each some feature
columns; one also holds the label. Training and prediction run secret-shared end to end
(:mod:`pet.ml.booster` states the protocol and exactly what each party learns).

Modules: ``binning`` (local quantile cuts, split candidates), ``_plain`` (plaintext
reference of the same algorithm), ``secure_hist`` (private indicator matrix x shared
vectors), ``booster`` (training and prediction in MPC), ``model_io`` (files, AES-GCM),
``estimators`` (scikit-learn API).
"""

from pet.ml.estimators import VerticalXGBClassifier, VerticalXGBRegressor

__all__ = ["VerticalXGBClassifier", "VerticalXGBRegressor"]
