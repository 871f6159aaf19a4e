"""A small scikit-learn autoencoder whose per-row reconstruction error scores plausibility.

NICE's plausibility mode (Brughmans et al. 2023) prefers the change that lowers an autoencoder's
reconstruction error most; the paper trains a Keras autoencoder on the scaled training data.
cfgen keeps to scikit-learn: numeric features are min-max scaled to [0, 1] on the training rows,
categoricals one-hot encoded over all their codes, and an ``MLPRegressor`` with a narrow hidden
layer learns to reproduce those rows. Calling the fitted object on encoded rows returns the mean
squared reconstruction error per row (shape (m,)), the callable NICE's ``auto_encoder`` expects.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

from cfgen.schema import FeatureSchema


class ReconstructionError:
    """Fit once on the training rows; ``self(X)`` is each row's reconstruction error.

    ``hidden``: hidden layer sizes (``None``: one layer of half the encoded width, at least 2,
    so the network must compress). ``seed`` fixes the network's initialisation and shuffling.
    """

    def __init__(
        self,
        X_train: np.ndarray,
        schema: FeatureSchema,
        *,
        seed: int,
        hidden: Sequence[int] | None = None,
        max_iter: int = 500,
    ) -> None:
        X_train = np.asarray(X_train, dtype=float)
        cat = schema.categorical
        self._cat_idx = np.flatnonzero(cat)
        self._num_idx = np.flatnonzero(~cat)
        self._scaler = MinMaxScaler().fit(X_train[:, self._num_idx]) if self._num_idx.size else None
        self._onehot = None
        if self._cat_idx.size:
            cats = [
                np.arange(len(schema.features[j].categories), dtype=float) for j in self._cat_idx
            ]
            self._onehot = OneHotEncoder(
                categories=cats, handle_unknown="ignore", sparse_output=False
            ).fit(X_train[:, self._cat_idx])
        Z = self.transform(X_train)
        layers = tuple(hidden) if hidden else (max(2, Z.shape[1] // 2),)
        self.network = MLPRegressor(
            hidden_layer_sizes=layers, max_iter=max_iter, random_state=int(seed)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.network.fit(Z, Z)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Encoded rows → the autoencoder's input (one-hot categoricals, scaled numerics)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        parts = []
        if self._onehot is not None:
            parts.append(self._onehot.transform(X[:, self._cat_idx]))
        if self._scaler is not None:
            parts.append(self._scaler.transform(X[:, self._num_idx]))
        return np.hstack(parts)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        Z = self.transform(X)
        recon = np.asarray(self.network.predict(Z)).reshape(Z.shape)
        return np.mean((recon - Z) ** 2, axis=1)
