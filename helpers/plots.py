"""Thin plotting helpers shared by every chapter.

Attention patterns go through circuitsvis (interactive; its HTML carries its own JavaScript, so it
renders in Jupyter, Colab and the built book, offline). Curves and matrices are matplotlib figures:
static images that render everywhere, including the book's HTML, with no JavaScript at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def attention_heads(pattern: torch.Tensor, tokens: Sequence[str], head_names: Sequence[str] | None = None):
    """Interactive view of attention patterns, (heads, T, T) or (T, T), with circuitsvis."""
    import circuitsvis as cv

    pattern = pattern.detach().float().cpu()
    if pattern.dim() == 2:
        pattern = pattern.unsqueeze(0)
    if pattern.dim() != 3 or pattern.shape[-1] != pattern.shape[-2] or pattern.shape[-1] != len(tokens):
        raise ValueError(f"pattern must be (heads, T, T) with T = len(tokens) = {len(tokens)}, "
                         f"got shape {tuple(pattern.shape)}")
    names = list(head_names) if head_names is not None else [f"head {h}" for h in range(pattern.shape[0])]
    return cv.attention.attention_heads(attention=pattern, tokens=list(tokens), attention_head_names=names)


def colored_tokens(tokens: Sequence[str], values, max_value: float | None = None):
    """Tokens coloured by a value each (e.g. a neuron's activation), with circuitsvis."""
    import circuitsvis as cv

    v = _np(values).reshape(-1)
    if len(v) != len(tokens):
        raise ValueError(f"need one value per token: {len(tokens)} tokens, {len(v)} values")
    return cv.tokens.colored_tokens(tokens=list(tokens), values=v.tolist(), min_value=0.0,
                                    max_value=float(max_value if max_value is not None else max(v.max(), 1e-6)))


def lines(series: Mapping[str, Sequence[float]] | Sequence[float], x: Sequence[float] | None = None,
          title: str = "", xlabel: str = "", ylabel: str = "", logx: bool = False,
          vlines: Mapping[str, float] | None = None, ax=None):
    """One or several curves on shared axes (a dict gives a legend); returns the matplotlib Axes."""
    if not isinstance(series, Mapping):
        series = {"": series}
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for name, y in series.items():
        y = _np(y)
        ax.plot(_np(x) if x is not None else np.arange(len(y)), y, label=name or None)
    for name, at in (vlines or {}).items():
        ax.axvline(at, color="grey", linestyle="--", linewidth=1)
        ax.annotate(name, (at, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                    fontsize=8, color="grey")
    if logx:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if any(series.keys()):
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def heatmap(matrix, title: str = "", xlabel: str = "", ylabel: str = "", cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None, xticks: Sequence[str] | None = None,
            yticks: Sequence[str] | None = None, annotate: bool = False, center: bool = False, ax=None):
    """A matrix as an image with a colour bar (row 0 at the top); returns the matplotlib Axes.

    ``center`` makes the colour scale symmetric about 0 (for signed effects, with a diverging cmap)."""
    m = _np(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {m.shape}")
    if center and vmin is None and vmax is None:
        vmax = float(np.abs(m).max()) or 1.0
        vmin = -vmax
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    if xticks is not None:
        ax.set_xticks(range(len(xticks)), xticks)
    if yticks is not None:
        ax.set_yticks(range(len(yticks)), yticks)
    if annotate:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="w")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def grid(n: int, ncols: int = 3, size: float = 3.6):
    """A row-major list of ``n`` matplotlib Axes on one figure."""
    nrows = -(-n // ncols)
    _, axes = plt.subplots(nrows, min(n, ncols), figsize=(size * min(n, ncols), size * nrows * 0.9),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return list(axes.flat[:n])


CLASS_COLOURS = {"name mover": "tab:green", "negative name mover": "tab:red", "S-suppression": "tab:olive",
                 "S-inhibition": "tab:orange", "induction": "tab:purple", "duplicate-token": "tab:blue",
                 "previous-token": "tab:cyan", "other": "tab:gray"}


def circuit_diagram(nodes: Mapping[str, tuple[int, str]], edges: Sequence[tuple[str, str, str]],
                    n_layers: int, title: str = "circuit", ax=None):
    """Heads as boxes by layer (bottom to top), coloured by class, and labelled arrows; ``"logits"`` on top.

    ``nodes``: name -> (layer, class); ``edges``: (sender, receiver, label)."""
    missing = {n for e in edges for n in e[:2]} - set(nodes) - {"logits"}
    if missing:
        raise ValueError(f"edges name nodes that are not in the circuit: {sorted(missing)}")
    by_layer: dict[int, list[str]] = {}
    for name, (layer, _) in nodes.items():
        by_layer.setdefault(layer, []).append(name)
    if ax is None:
        widest = max((len(v) for v in by_layer.values()), default=1)
        _, ax = plt.subplots(figsize=(max(7.0, 1.7 * widest), 1.3 * (n_layers + 1)))
    xy = {"logits": (0.5, n_layers)}
    for layer, names in by_layer.items():
        for i, name in enumerate(names):
            xy[name] = ((i + 1) / (len(names) + 1), layer)
    for s, r, label in edges:
        (x0, y0), (x1, y1) = xy[s], xy[r]
        ax.annotate("", (x1, y1 - 0.15), (x0, y0 + 0.15), arrowprops={"arrowstyle": "->", "color": "0.3"})
        ax.text(0.7 * x0 + 0.3 * x1, 0.7 * y0 + 0.3 * y1, label, fontsize=8, ha="center", va="center",
                bbox={"boxstyle": "round", "fc": "white", "ec": "none", "alpha": 0.8})
    for name, (x, y) in xy.items():
        cls = nodes[name][1] if name in nodes else "logits"
        ax.text(x, y, name if name == "logits" else f"{name}\n{cls}", ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "fc": CLASS_COLOURS.get(cls, "white"), "alpha": 0.5})
    ax.set(xlim=(0, 1), ylim=(-0.6, n_layers + 0.5), title=title, yticks=range(n_layers + 1),
           yticklabels=[f"layer {i}" for i in range(n_layers)] + ["logits"], xticks=[])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def colored_tokens_multi(tokens: Sequence[str], values, labels: Sequence[str] | None = None):
    """Tokens coloured by one column of ``values`` [T, n], the column chosen in a menu (circuitsvis).

    E.g. one column of saliency shares per generated token; for one value a token, use ``colored_tokens``.
    """
    import circuitsvis as cv

    v = torch.as_tensor(_np(values))
    if v.dim() == 1:
        v = v[:, None]
    if v.dim() != 2 or v.shape[0] != len(tokens):
        raise ValueError(f"values must be [T] or [T, n] with T = len(tokens) = {len(tokens)}, got {tuple(v.shape)}")
    names = list(labels) if labels is not None else [f"{i}" for i in range(v.shape[1])]
    if len(names) != v.shape[1]:
        raise ValueError(f"{len(names)} labels for {v.shape[1]} columns of values")
    return cv.tokens.colored_tokens_multi(tokens=list(tokens), values=v, labels=names)


def scatter(xy, groups: Sequence[str] | Sequence[int], title: str = "", xlabel: str = "", ylabel: str = "",
            max_legend: int = 12, ax=None):
    """Points [N, 2] coloured by group (a cluster id or a label), one legend entry a group; returns the Axes."""
    p = _np(xy)
    if p.ndim != 2 or p.shape[1] != 2 or len(groups) != len(p):
        raise ValueError(f"need xy [N, 2] and N groups; got shape {p.shape} and {len(groups)} groups")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    names = list(dict.fromkeys(groups))
    names = sorted(names) if all(isinstance(n, (int, np.integer)) for n in names) else names
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    g = np.asarray(list(groups), dtype=object)
    for i, name in enumerate(names):
        sel = g == name
        ax.scatter(p[sel, 0], p[sel, 1], s=6, alpha=0.6, color=cmap(i % cmap.N), label=str(name))
    if len(names) <= max_legend:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def edge_graph(nodes: Sequence[str], n_heads: int, edges: Mapping[tuple[str, str], str], title: str = "",
               ax=None):
    """An edge circuit on the model's grid: layers bottom to top, heads left to right, the MLP on the right.

    ``nodes``: every node name of the graph (``embed``, ``L1H6``, ``MLP1``, ``logits``); ``edges``: (sender,
    receiver) -> a style: ``"found"`` (solid blue), ``"true"`` (found and in the truth: solid green),
    ``"false"`` (found, not in the truth: solid red), ``"missed"`` (in the truth, not found: dashed grey).
    Nodes are dots, labelled beside them (never over a line's end), and only the nodes an edge touches.
    """
    styles = {"found": ("tab:blue", "-"), "true": ("tab:green", "-"), "false": ("tab:red", "-"),
              "missed": ("0.6", "--")}
    xy: dict[str, tuple[float, float]] = {}
    n_layers = 0
    for n in nodes:
        if n.startswith("L"):
            layer, h = (int(x) for x in n[1:].split("H"))
            xy[n] = (h, layer + 1)
            n_layers = max(n_layers, layer + 1)
        elif n.startswith("MLP"):
            xy[n] = (n_heads + 0.5, int(n[3:]) + 1.45)
    xy["embed"] = ((n_heads - 1) / 2, 0)
    xy["logits"] = ((n_heads - 1) / 2, n_layers + 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 * n_heads + 3, 1.1 * (n_layers + 2)))
    used = {n for e in edges for n in e}
    for (s, r), style in sorted(edges.items(), key=lambda kv: kv[1] == "missed", reverse=True):
        colour, ls = styles[style]
        (x0, y0), (x1, y1) = xy[s], xy[r]
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "-|>", "color": colour, "ls": ls, "lw": 1.3,
                                                        "shrinkA": 5, "shrinkB": 5, "alpha": 0.8,
                                                        "connectionstyle": "arc3,rad=0.08"})
    for n, (x, y) in xy.items():
        on = n in used
        ax.plot([x], [y], "o", ms=7 if on else 4, color="0.15" if on else "0.8", zorder=3)
        if on:
            ax.text(x + 0.12, y - 0.12, n, fontsize=8, ha="left", va="top", zorder=4,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 0.5})
    handles = [plt.Line2D([], [], color=c, ls=ls, label=k) for k, (c, ls) in styles.items()
               if k in set(edges.values())]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set(xlim=(-0.6, n_heads + 1.2), ylim=(-0.5, n_layers + 1.5), title=title, xticks=[],
           yticks=range(n_layers + 2), yticklabels=["embed"] + [f"layer {i}" for i in range(n_layers)] + ["logits"])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax
