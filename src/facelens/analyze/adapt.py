"""Test-time personalisation of the expression head: adapt to the person in front of the camera, without labels.

People differ: a head fitted on FER+ meets a subject whose neutral face looks "sad" to it, or whose smile is
small. Each method here keeps per-subject state over the linear expression head (``ferplus_*``: standardised
features → softmax regression) and refines its answers as that subject's faces arrive, in order:

- ``cache``: gradient-free, after TTA-CaP/TDA. Class prototypes from the head (the source cache), a positive
  cache of the subject's confident faces (low entropy, agreeing with the cache's answer and, for video, stable
  over the last frames) and a negative cache of uncertain faces with the classes they are surely not. The answer
  is the head's logits plus the affinity to the positive cache minus the affinity to the negative one.
- ``t3a``: prototype adjustment (Iwasawa & Matsuo 2021): the classifier is replaced by the normalised centroids
  of the subject's lowest-entropy faces per pseudo-class, started from the head's own weight vectors.
- ``tent``: entropy minimisation (Wang et al. 2021) of a per-feature affine map in front of the head, on the
  subject's running feature statistics, with SAR's filter (only faces already fairly sure update it).
- ``shot``: information maximisation (SHOT, Liang et al. 2020) of a per-class offset of the head's logits over the
  subject's recent faces: each face sure (low entropy), the subject's faces together diverse (high entropy of
  their mean answer), the faces the head was already sure of held to their answer, the offset bounded. It assumes
  a subject shows more than one expression (posed sets do); a subject who shows one uncertain expression all along
  (e.g. only "sad") loses some of it (see docs/expression.md).
- ``balanced``: not an adaptation but the reference every method here must beat: the same head without its bias,
  i.e. without FER+'s class prior (a third of FER+ is neutral; the bias correlates 0.94 with the log prior), the
  logit adjustment of Menon et al. 2021 to a uniform prior. Stateless. On class-balanced posed sets it gains more
  than any per-subject method (and none adds anything on top of it); on neutral-heavy faces (FER+ itself) it loses.

A subject is a video track or an explicit group (e.g. one folder of one person's photos). State lives in one
:class:`Adaptation` per subject, so nothing leaks between subjects; everything is deterministic for a given input
order. The unadapted answer is always kept beside the adapted one by the callers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from facelens.errors import FacelensError

#: Adaptation methods by name (see the module docstring).
ADAPT_METHODS = ("cache", "t3a", "tent", "shot", "balanced")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(np.clip(probs, 1e-12, None))).sum(-1)


def _unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


@dataclass(frozen=True)
class LinearHead:
    """The expression head as arrays: ``logits = ((x - mean) / scale) @ weight + bias``."""

    mean: np.ndarray  # [D]
    scale: np.ndarray  # [D]
    weight: np.ndarray  # [D, K]
    bias: np.ndarray  # [K]
    labels: tuple[str, ...]

    @classmethod
    def of(cls, model: object) -> LinearHead:
        """The linear head of a trained expression model (``ferplus_*``); other models cannot be adapted here."""
        regression = getattr(model, "regression", None)
        if regression is None or getattr(regression, "weight", None) is None:
            name = getattr(model, "name", None) or type(model).__name__
            raise FacelensError(
                f"expression model {name!r} has no linear head to adapt: use a trained head (ferplus_*)"
            )
        return cls(regression.mean, regression.scale, regression.weight, regression.bias, tuple(model.labels))

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return ((np.asarray(features, np.float32) - self.mean) / self.scale).astype(np.float32)

    def logits(self, z: np.ndarray) -> np.ndarray:
        return z @ self.weight + self.bias


class Adaptation(ABC):
    """One subject's adaptation state. :meth:`update` takes the subject's next faces (features in input order) and
    returns their adapted class probabilities; each face is answered with what was known up to and including it."""

    name: str = ""

    def __init__(self, head: LinearHead) -> None:
        self.head = head
        self.k = head.weight.shape[1]
        self.seen = 0

    def update(self, features: np.ndarray) -> np.ndarray:
        features = np.atleast_2d(np.asarray(features, np.float32))
        if features.shape[1] != self.head.weight.shape[0]:
            raise FacelensError(
                f"features of size {features.shape[1]} do not fit the expression head ({self.head.weight.shape[0]})"
            )
        out = np.empty((len(features), self.k), np.float32)
        for i, z in enumerate(self.head.standardise(features)):
            out[i] = self._step(z)
            self.seen += 1
        return out

    @abstractmethod
    def _step(self, z: np.ndarray) -> np.ndarray: ...


class CacheAdaptation(Adaptation):
    """Positive/negative caches of the subject's own faces (gradient-free; TTA-CaP's gates, TDA's affinities)."""

    name = "cache"

    def __init__(
        self, head: LinearHead, capacity: int = 6, negative_capacity: int = 3, sure: float = 0.35,
        unsure: tuple[float, float] = (0.45, 0.8), alpha: float = 2.0, sharpness: float = 5.0,
        negative_alpha: float = 0.5, not_class: float = 0.03, stable_frames: int = 0,
    ) -> None:  # fmt: skip
        """``sure``/``unsure``: entropy bands (a fraction of log K) for the positive and the negative cache;
        ``stable_frames``: for video, the head's answer must have been the same over that many previous faces."""
        super().__init__(head)
        self.capacity, self.negative_capacity = capacity, negative_capacity
        self.sure, self.unsure = sure * np.log(self.k), (unsure[0] * np.log(self.k), unsure[1] * np.log(self.k))
        self.alpha, self.sharpness, self.negative_alpha, self.not_class = alpha, sharpness, negative_alpha, not_class
        self.stable_frames = stable_frames
        self.prototypes = _unit(head.weight.T)  # the source cache: one direction per class
        self.positive: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(self.k)]
        self.negative: list[tuple[float, np.ndarray, np.ndarray]] = []
        self.recent: deque[int] = deque(maxlen=max(stable_frames, 1))

    def _affinity(self, u: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        if not len(keys):
            return np.zeros(self.k, np.float32)
        return np.exp(-self.sharpness * (1.0 - keys @ u)) @ values

    def _positive_logits(self, u: np.ndarray) -> np.ndarray:
        keys = [f for entries in self.positive for _, f in entries]
        values = [np.eye(self.k, dtype=np.float32)[c] for c, entries in enumerate(self.positive) for _ in entries]
        return self._affinity(u, np.array(keys), np.array(values))

    def _negative_logits(self, u: np.ndarray) -> np.ndarray:
        if not self.negative:
            return np.zeros(self.k, np.float32)
        return self._affinity(u, np.array([f for _, f, _ in self.negative]), np.array([m for _, _, m in self.negative]))

    def _step(self, z: np.ndarray) -> np.ndarray:
        u = _unit(z)
        base = self.head.logits(z)
        p0 = softmax(base)
        h = float(entropy(p0))
        c0 = int(p0.argmax())
        logits = base + self.alpha * self._positive_logits(u) - self.negative_alpha * self._negative_logits(u)
        p = softmax(logits)
        c = int(p.argmax())
        stable = self.stable_frames == 0 or (len(self.recent) == self.stable_frames and set(self.recent) == {c0})
        agrees = c == c0 and int((self.prototypes @ u).argmax()) == c0 or c == c0 and h < 0.5 * self.sure
        if h < self.sure and stable and agrees:
            entries = self.positive[c0]
            entries.append((h, u))
            entries.sort(key=lambda e: e[0])
            del entries[self.capacity :]
        elif self.unsure[0] < h < self.unsure[1]:
            mask = (p0 < self.not_class).astype(np.float32)
            if mask.any():
                self.negative.append((h, u, mask))
                self.negative.sort(key=lambda e: e[0])
                del self.negative[self.negative_capacity * self.k :]
        self.recent.append(c0)
        return p


class T3AAdaptation(Adaptation):
    """Prototype adjustment: per pseudo-class supports (the ``filter_k`` lowest-entropy faces), classifier = their
    normalised centroids; started from the head's weight vectors so few faces change little."""

    name = "t3a"

    def __init__(self, head: LinearHead, filter_k: int = 20) -> None:
        super().__init__(head)
        self.filter_k = filter_k
        w = head.weight.T  # [K, D]
        self.supports = [w.astype(np.float32)]
        warm = softmax(w @ head.weight + head.bias)
        self.labels = [np.eye(self.k, dtype=np.float32)[warm.argmax(1)]]
        self.entropies = [entropy(warm).astype(np.float32)]
        self.temperature = float(np.linalg.norm(head.weight, axis=0).mean())

    def _step(self, z: np.ndarray) -> np.ndarray:
        p0 = softmax(self.head.logits(z))
        self.supports.append(z[None])
        self.labels.append(np.eye(self.k, dtype=np.float32)[[int(p0.argmax())]])
        self.entropies.append(entropy(p0)[None].astype(np.float32))
        supports, labels, ents = np.concatenate(self.supports), np.concatenate(self.labels), np.concatenate(self.entropies)
        keep = []
        for c in range(self.k):
            members = np.flatnonzero(labels[:, c] > 0)
            keep.extend(members[np.argsort(ents[members], kind="stable")[: self.filter_k]])
        keep = np.sort(np.array(keep))
        self.supports, self.labels, self.entropies = [supports[keep]], [labels[keep]], [ents[keep]]
        weights = _unit(_unit(supports[keep]).T @ labels[keep], axis=0)  # [D, K]
        return softmax(self.temperature * (z @ weights))


class TentAdaptation(Adaptation):
    """Entropy minimisation of ``gamma * (z - mu) + beta`` in front of the head; ``mu`` is the subject's running
    mean shrunk to the training mean (``prior`` faces' worth), only faces with entropy below ``reliable * log K``
    update (SAR), each face takes ``steps`` gradient steps on the recent window of reliable faces."""

    name = "tent"

    def __init__(
        self, head: LinearHead, lr: float = 0.05, steps: int = 1, window: int = 32, prior: float = 8.0,
        reliable: float = 0.4,
    ) -> None:  # fmt: skip
        super().__init__(head)
        d = head.weight.shape[0]
        self.gamma, self.beta = np.ones(d, np.float32), np.zeros(d, np.float32)
        self.lr, self.steps, self.prior, self.reliable = lr, steps, prior, reliable * np.log(self.k)
        self.total = np.zeros(d, np.float64)
        self.window: deque[np.ndarray] = deque(maxlen=window)

    def _mu(self) -> np.ndarray:
        return (self.total / (self.seen + self.prior)).astype(np.float32)

    def _probs(self, z: np.ndarray) -> np.ndarray:
        return softmax(self.head.logits(self.gamma * (z - self._mu()) + self.beta))

    def _step(self, z: np.ndarray) -> np.ndarray:
        self.total += z
        if float(entropy(self._probs(z))) < self.reliable:
            self.window.append(z)
        if self.window:
            batch = np.array(self.window)
            centred = batch - self._mu()
            for _ in range(self.steps):
                p = self._probs(batch)
                logp = np.log(np.clip(p, 1e-12, None))
                h = -(p * logp).sum(1, keepdims=True)
                d_logits = -p * (logp + h)  # dH/dlogits per face
                d_input = d_logits @ self.head.weight.T  # [n, D]
                self.gamma -= self.lr * (d_input * centred).mean(0)
                self.beta -= self.lr * d_input.mean(0)
        return self._probs(z)


class ShotAdaptation(Adaptation):
    """Information maximisation on an offset ``delta`` of the head's logits (K numbers per subject), warm-started
    from the previous face: ``steps`` gradient steps on ``mean H(p_i) - w * H(mean p) + anchor * CE(sure faces,
    their unadapted class)`` over the last ``window`` faces, ``w = diversity * n / (n + prior)`` (n faces seen, so
    the first faces of a subject move little), ``delta`` centred and clipped to ``±bound`` nats. Sure faces: unadapted
    entropy below ``sure * log K``. Defaults chosen on CK+'s odd-numbered subjects (benchmarks/adapt.py)."""

    name = "shot"

    def __init__(
        self, head: LinearHead, diversity: float = 3.0, anchor: float = 10.0, sure: float = 0.3, prior: float = 4.0,
        bound: float = 1.5, lr: float = 0.5, steps: int = 30, window: int = 64,
    ) -> None:  # fmt: skip
        super().__init__(head)
        self.diversity, self.anchor, self.sure, self.prior = diversity, anchor, sure * np.log(self.k), prior
        self.bound, self.lr, self.steps = bound, lr, steps
        self.delta = np.zeros(self.k, np.float64)
        self.logits: deque[np.ndarray] = deque(maxlen=window)
        self.anchors: deque[np.ndarray] = deque(maxlen=window)  # one-hot unadapted class of a sure face, else zeros

    def _step(self, z: np.ndarray) -> np.ndarray:
        base = self.head.logits(z).astype(np.float64)
        p0 = softmax(base)
        self.logits.append(base)
        self.anchors.append(np.eye(self.k)[int(p0.argmax())] * float(entropy(p0) < self.sure))
        logits, anchors = np.array(self.logits), np.array(self.anchors)
        n = self.seen + 1
        w = self.diversity * n / (n + self.prior)
        delta = self.delta
        for _ in range(self.steps):
            p = softmax(logits + delta)
            logp = np.log(np.clip(p, 1e-12, None))
            d_ent = (-p * (logp - (p * logp).sum(1, keepdims=True))).mean(0)  # d mean H(p_i) / d delta
            log_mean = np.log(np.clip(p.mean(0), 1e-12, None))
            d_div = (-p * (log_mean - (p * log_mean).sum(1, keepdims=True))).mean(0)  # d H(mean p) / d delta
            d_anchor = ((p - anchors) * anchors.sum(1, keepdims=True)).mean(0)
            delta = delta - self.lr * (d_ent - w * d_div + self.anchor * d_anchor)
            delta = np.clip(delta - delta.mean(), -self.bound, self.bound)
        self.delta = delta
        return softmax(base + delta).astype(np.float32)


class BalancedPrior(Adaptation):
    """The head with a uniform class prior (its bias dropped): the same answer for a face whoever it belongs to."""

    name = "balanced"

    def _step(self, z: np.ndarray) -> np.ndarray:
        return softmax(z @ self.head.weight).astype(np.float32)


_CLASSES = {
    "cache": CacheAdaptation, "t3a": T3AAdaptation, "tent": TentAdaptation, "shot": ShotAdaptation,
    "balanced": BalancedPrior,
}  # fmt: skip


def new_adaptation(method: str, head: LinearHead, **options: object) -> Adaptation:
    """A fresh state of ``method`` for one subject."""
    if method not in _CLASSES:
        raise ValueError(f"unknown adaptation method {method!r}; choose from {', '.join(ADAPT_METHODS)}")
    return _CLASSES[method](head, **options)


class SubjectAdapter:
    """Adaptation states by subject (a track id, a folder...), made on first sight; :meth:`reset` forgets one."""

    def __init__(self, method: str, head: LinearHead, **options: object) -> None:
        new_adaptation(method, head, **options)  # checks the method and its options now
        self.method, self.head, self.options = method, head, options
        self.states: dict[Hashable, Adaptation] = {}

    def update(self, subject: Hashable, features: np.ndarray) -> np.ndarray:
        state = self.states.get(subject)
        if state is None:
            state = self.states[subject] = new_adaptation(self.method, self.head, **self.options)
        return state.update(features)

    def reset(self, subject: Hashable | None = None) -> None:
        if subject is None:
            self.states.clear()
        else:
            self.states.pop(subject, None)


def adapt_groups(
    method: str, head: LinearHead, features: np.ndarray, groups: Sequence[Hashable], **options: object
) -> np.ndarray:
    """Adapted probabilities of every face, each group (subject) adapted on its own faces in the given order."""
    features = np.asarray(features, np.float32)
    if len(features) != len(groups):
        raise ValueError("adapt_groups needs one group per face")
    adapter = SubjectAdapter(method, head, **options)
    out = np.empty((len(features), head.weight.shape[1]), np.float32)
    order: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(g, []).append(i)
    for g, rows in order.items():
        out[rows] = adapter.update(g, features[rows])
    return out
