"""Plot helpers: they return renderable objects and reject malformed input clearly."""

import pytest
import torch

from helpers import plots


def test_attention_heads_renders_html():
    html = plots.attention_heads(torch.rand(2, 3, 3).softmax(-1), ["a", "b", "c"], ["h0", "h1"])
    assert "circuits-vis" in html._repr_html_()
    assert plots.attention_heads(torch.eye(3), ["a", "b", "c"]) is not None  # one (T, T) pattern


def test_attention_heads_rejects_bad_shapes():
    with pytest.raises(ValueError, match="len\\(tokens\\)"):
        plots.attention_heads(torch.rand(2, 3, 3), ["a", "b"])


def test_lines_and_heatmap():
    ax = plots.lines({"a": [1, 2, 3], "b": torch.tensor([3.0, 2.0, 1.0])}, logx=True, vlines={"x": 2})
    assert len(ax.get_lines()) >= 2
    ax = plots.heatmap(torch.rand(3, 4), xticks=list("abcd"), annotate=True)
    assert ax.get_title() == ""
    with pytest.raises(ValueError, match="2-D"):
        plots.heatmap(torch.rand(3))
    assert len(plots.grid(5, ncols=2)) == 5
