"""A small sound classifier over stored window features: multinomial logistic regression in numpy
(L-BFGS from scipy), standardised inputs, L2 penalty; saved as plain JSON, never pickled.

It exists to show that the stored audio features serve a downstream job: a head trained on a few
labelled windows tells their sounds apart on held-out windows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

FEATURE_SETS = ("mfcc", "embedding", "both")


@dataclass
class SoundHead:
    """Weights (n_features, n_labels), biases, the labels, and the input standardisation."""

    labels: list[str]
    features: str
    mean: list[float]
    std: list[float]
    weights: list[list[float]]
    bias: list[float]
    info: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(n, n_labels) class probabilities of feature rows."""
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        return _softmax(z @ np.asarray(self.weights) + np.asarray(self.bias))

    def predict(self, x: np.ndarray) -> list[tuple[str, float]]:
        """(label, probability) of the most likely class of each row."""
        p = self.probabilities(x)
        best = p.argmax(axis=1)
        return [(self.labels[int(b)], float(p[i, b])) for i, b in enumerate(best)]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> SoundHead:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**data)


def window_features(row: dict[str, Any], features: str) -> np.ndarray | None:
    """The feature vector of one `audio` row: MFCC mean and std over frames, its embedding, or both.

    None when the row lacks what the set needs (a window too quiet to be embedded).
    """
    parts: list[np.ndarray] = []
    if features in ("mfcc", "both"):
        mfcc = np.asarray(row["mfcc"], dtype=np.float64)
        parts += [mfcc.mean(axis=1), mfcc.std(axis=1)]
    if features in ("embedding", "both"):
        if row.get("embedding") is None:
            return None
        parts.append(np.asarray(row["embedding"], dtype=np.float64))
    return np.concatenate(parts)


def fit(x: np.ndarray, y: list[str], *, features: str, l2: float = 1e-2) -> SoundHead:
    """Fit the head on feature rows and their labels (at least two distinct labels)."""
    labels = sorted(set(y))
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least two labels, got {labels}")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    z = (x - mean) / std
    onehot = np.eye(len(labels))[[labels.index(v) for v in y]]
    d, k = z.shape[1], len(labels)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        p = _softmax(z @ w + b)
        n = len(z)
        value = -np.sum(onehot * np.log(np.maximum(p, 1e-12))) / n + 0.5 * l2 * np.sum(w * w)
        grad_logits = (p - onehot) / n
        return value, np.concatenate([(z.T @ grad_logits + l2 * w).ravel(), grad_logits.sum(axis=0)])

    result = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    w, b = result.x[: d * k].reshape(d, k), result.x[d * k :]
    return SoundHead(labels, features, mean.tolist(), std.tolist(), w.tolist(), b.tolist())


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
