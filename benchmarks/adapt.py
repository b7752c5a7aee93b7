"""Test-time personalisation, measured: each adaptation method cross-dataset against the same head unadapted.

Train domain: FER+ (the default expression head). Targets: CK+48 grouped by subject (each subject adapted on its
own faces, in sequence order; reported for the odd-numbered subjects, on which the methods' settings were
chosen, and for the even-numbered ones, which were not looked at while choosing), and fer2013_sample as one
group (a domain, not a person: FER2013 faces are all different people). Two stress targets show what a method
does to a subject who shows ONE expression: CK+ grouped by sequence (one expression, ~3 faces a group) and CK+
grouped by expression (all faces of one class as one "subject", up to 249 faces). Accuracy and macro-F1 with and
without adaptation, per subject and overall, how many subjects got better/worse (against the same head unadapted),
and the cost per face. Every method runs twice: over the shipped head, and over the same head without its bias
(FER+'s class prior; ``balanced``), to tell a per-subject gain from a class-prior correction. ``--in-domain``
adds FER+ valid (neutral-heavy, the train domain) to show what dropping the prior costs there.

    python benchmarks/adapt.py [--model ferplus_both] [--in-domain] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from facelens.analyze.adapt import ADAPT_METHODS, LinearHead, adapt_groups, softmax
from facelens.analyze.expression import DEFAULT_EXPRESSION_MODEL, get_expression_model
from facelens.analyze.expression_heads import whole_crops
from facelens.evaluate.expression import expression_report, labelled_faces

DATA = Path(os.environ.get("FACELENS_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_set(name: str) -> tuple[list[Path], list[str], list[str]]:
    """Paths, labels and subjects (CK+: the S### of the file name; fer2013_sample: one group) in adaptation order."""
    root = DATA / "expression" / name
    if not root.is_dir():
        sys.exit(f"{root} not found: set FACELENS_TEST_DATA to the shared data folder")
    items = labelled_faces(root)
    if name == "ckplus48":
        items.sort(key=lambda item: item[0].name)  # S<subject>_<sequence>_<frame>: subject, then time
        subjects = [p.name.split("_")[0] for p, _ in items]
    else:
        subjects = ["all"] * len(items)
    return [p for p, _ in items], [label for _, label in items], subjects


def features_of(paths: list[Path], model: object) -> np.ndarray:
    grays = np.array([cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (48, 48)) for p in paths])
    return np.concatenate([model.features(whole_crops(grays[i : i + 128], model)) for i in range(0, len(grays), 128)])


def scores(labels: list[str], probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    predicted = [classes[k] for k in probs.argmax(1)]
    report = expression_report(labels, predicted, model_classes=classes)
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_EXPRESSION_MODEL)
    parser.add_argument("--in-domain", action="store_true",
                        help="also FER+ valid as one group (what the prior costs on neutral-heavy faces; ~2 min more)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = get_expression_model(args.model)
    shipped = LinearHead.of(model)
    # the same head without FER+'s class prior: every method again on top of it (is there a per-subject gain left?)
    heads = {"fer+ prior": shipped, "balanced": replace(shipped, bias=np.zeros_like(shipped.bias))}
    rows = []
    for name in ("ckplus48", "fer2013_sample") + (("ferplus_valid",) if args.in_domain else ()):
        if name == "ferplus_valid":
            from facelens.analyze.expression_heads import FerPlus

            valid = FerPlus.load(DATA / "expression" / "ferplus" / "ferplus_valid.npz")
            labels, subjects = list(valid.labels), ["all"] * len(valid.labels)
            feats = np.concatenate([model.features(whole_crops(valid.images[i : i + 256], model))
                                    for i in range(0, len(valid.images), 256)])  # fmt: skip
        else:
            paths, labels, subjects = load_set(name)
            feats = features_of(paths, model)
        everyone = np.ones(len(labels), bool)
        targets = [(name, subjects, {"all": everyone})]
        if name == "ckplus48":
            number = np.array([int(s[1:]) for s in subjects])
            halves = {"chosen-on (odd subjects)": number % 2 == 1, "held-out (even subjects)": number % 2 == 0,
                      "all": everyone}  # fmt: skip
            sequences = ["_".join(p.name.split("_")[:2]) for p in paths]
            targets = [(name, subjects, halves), ("ck+ by sequence", sequences, {"all (one expression a group)": everyone}),
                       ("ck+ by class", labels, {"all (one expression a group)": everyone})]  # fmt: skip
        for head_name, head in heads.items():
            base = softmax(head.logits(head.standardise(feats)))
            methods = [m for m in ADAPT_METHODS if not (head_name == "balanced" and m == "balanced")]
            for target, groups, parts in targets:
                for method in (None, *methods):
                    start = time.perf_counter()
                    probs = base if method is None else adapt_groups(method, head, feats, groups)
                    ms = (time.perf_counter() - start) * 1000 / len(labels)
                    for half, keep in parts.items():
                        sub = [lab for lab, k in zip(labels, keep) if k]
                        row = {"set": target, "subjects": half, "head": head_name, "method": method or "none",
                               "faces": int(keep.sum()), **scores(sub, probs[keep], head.labels),
                               "ms_per_face": round(ms, 3)}  # fmt: skip
                        if method is not None:
                            row["per_subject_better"] = _per_subject(labels, base, probs, groups, keep, head.labels)
                        rows.append(row)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"{'set':<15} {'subjects':<29} {'head':<10} {'method':<8} {'faces':>5} {'acc':>7} {'macro-F1':>8} "
          f"{'Δacc':>7} {'ms/face':>8}  subjects better/worse")  # fmt: skip
    print("(Δacc: against the shipped head (fer+ prior) unadapted on the same faces)")
    base_acc = {}
    for r in rows:
        key = (r["set"], r["subjects"])
        if r["method"] == "none" and r["head"] == "fer+ prior":
            base_acc[key] = r["accuracy"]
        delta = r["accuracy"] - base_acc[key]
        better = r.get("per_subject_better", "")
        print(f"{r['set']:<15} {r['subjects']:<29} {r['head']:<10} {r['method']:<8} {r['faces']:>5} "
              f"{r['accuracy']:>7.4f} {r['macro_f1']:>8.4f} {delta:>+7.4f} {r['ms_per_face']:>8.3f}  {better}")  # fmt: skip


def _per_subject(labels, base, probs, subjects, keep, classes) -> str:
    """How many subjects the method made right more (/less) often than the unadapted head."""
    labels = np.array(labels)
    better = worse = 0
    for s in sorted(set(np.array(subjects)[keep])):
        rows = np.array(subjects) == s
        truth = labels[rows]
        a0 = (np.array(classes)[base[rows].argmax(1)] == _canon(truth)).mean()
        a1 = (np.array(classes)[probs[rows].argmax(1)] == _canon(truth)).mean()
        better += a1 > a0
        worse += a1 < a0
    return f"{better}/{worse}"


def _canon(labels: np.ndarray) -> np.ndarray:
    from facelens.evaluate.expression import canonical

    return np.array([canonical(x) for x in labels])


if __name__ == "__main__":
    main()
