"""Reports: matplotlib figures saved as PNG files, and one self-contained HTML page (images inlined as base64)
with the summary tables, so a report can be mailed or archived as a single file."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def plot_roc(scores, labels, title: str = "ROC") -> bytes:
    from sklearn.metrics import roc_curve

    plt = _plt()
    fpr, tpr, _ = roc_curve(np.asarray(labels, bool), scores)
    fig, ax = plt.subplots(figsize=(5, 4))
    floor = 1.0 / max((~np.asarray(labels, bool)).sum(), 1)
    ax.plot(np.maximum(fpr, floor / 2), tpr, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1)
    ax.set_xlabel("false accept rate (FAR, log)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return png_bytes(fig)


def plot_det(scores, labels, title: str = "DET") -> bytes:
    from scipy.stats import norm
    from sklearn.metrics import det_curve

    plt = _plt()
    fpr, fnr, _ = det_curve(np.asarray(labels, bool), scores)
    eps = 1e-4
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(norm.ppf(np.clip(fpr, eps, 1 - eps)), norm.ppf(np.clip(fnr, eps, 1 - eps)), lw=1.5)
    ticks = [1e-3, 1e-2, 5e-2, 0.2, 0.5]
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(eps), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(eps), norm.ppf(0.6))
    ax.set_xlabel("false match rate (FMR, probit)")
    ax.set_ylabel("false non-match rate (FNMR, probit)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return png_bytes(fig)


def plot_scores(scores, labels, threshold: float | None = None, title: str = "Similarity distributions") -> bytes:
    plt = _plt()
    labels = np.asarray(labels, bool)
    scores = np.asarray(scores)
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(scores.min(), scores.max(), 50)
    ax.hist(scores[labels], bins=bins, alpha=0.6, label="same person", density=True)
    ax.hist(scores[~labels], bins=bins, alpha=0.6, label="different persons", density=True)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    return png_bytes(fig)


def plot_tippett(llr, labels, title: str = "Tippett plot") -> bytes:
    """Share of genuine / impostor pairs whose log10 LR exceeds each value."""
    plt = _plt()
    labels = np.asarray(labels, bool)
    l10 = np.asarray(llr) / np.log(10)
    grid = np.linspace(np.nanmin(l10[np.isfinite(l10)]) - 0.5, np.nanmax(l10[np.isfinite(l10)]) + 0.5, 400)
    fig, ax = plt.subplots(figsize=(5, 4))
    for mask, name in ((labels, "same person"), (~labels, "different persons")):
        ax.plot(grid, [(l10[mask] > g).mean() for g in grid], label=name)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("log10 likelihood ratio")
    ax.set_ylabel("proportion with LR greater")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    return png_bytes(fig)


def plot_reliability(table: Mapping, title: str = "Reliability") -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    rows = table["bins"]
    ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], "o-", label=f"ECE {table['ece']:.3f}")
    ax.set_xlabel("predicted P(same person)")
    ax.set_ylabel("observed share same person")
    ax.set_title(title)
    ax.legend()
    return png_bytes(fig)


def plot_cmc(curve: Sequence[float], title: str = "CMC") -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ranks = np.arange(1, len(curve) + 1)
    ax.plot(ranks, curve, "o-", ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return png_bytes(fig)


def plot_bars(rows: Sequence[Mapping], key: str, label: str, value: str, title: str, baseline: float | None = None) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.5))
    names = [str(r[label]) for r in rows]
    ax.barh(names, [r[key] for r in rows])
    if baseline is not None:
        ax.axvline(baseline, color="k", ls="--", lw=1, label="unperturbed")
        ax.legend()
    ax.invert_yaxis()
    ax.set_xlabel(value)
    ax.set_title(title)
    return png_bytes(fig)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: Sequence[Mapping] | Mapping) -> str:
    if isinstance(rows, Mapping):
        body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in rows.items())
        return f"<table>{body}</table>"
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def flatten(data: Mapping, prefix: str = "") -> dict:
    """Nested dict → one level with dotted keys (for summary tables)."""
    out = {}
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        elif not isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = v
    return out


def write_report(
    out_dir: str | Path,
    title: str,
    results: Mapping,
    figures: Mapping[str, bytes] | None = None,
    tables: Mapping[str, Sequence[Mapping] | Mapping] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``results.json``, one PNG per figure and ``report.html`` (self-contained) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(n)}</p>" for n in notes]
    for name, rows in (tables or {}).items():
        parts.append(f"<h2>{html.escape(name)}</h2>{_table(rows)}")
    for name, data in (figures or {}).items():
        (out / f"{name}.png").write_bytes(data)
        b64 = base64.b64encode(data).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{b64}">'
                     f"<figcaption>{html.escape(name)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}figure{display:inline-block;margin:8px}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    log.info("report written to %s", path)
    return path
