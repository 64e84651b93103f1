"""The chapters' notebook set-up, done once when a chapter imports ``helpers`` (no per-chapter call).

Inside a Jupyter kernel (the book build, nbval, papermill, Jupyter, VS Code, Colab):

- matplotlib draws inline whatever ``MPLBACKEND`` says, so no ``plt.show()`` drops a figure;
- each PNG carries a one-line description of its figure (titles, axes, legend) in its ``Description``
  text chunk, which the book's Sphinx extension (``book/_ext/book_html.py``) turns into alt text;
- progress bars are one line of text, written when done, where no widget frontend will draw them (the
  book build, nbval, papermill: kernels run by nbclient), and the Hugging Face "Loading weights" bars are
  off there;
  in Jupyter, VS Code and Colab they stay widgets. ``CIRCUITS_PROGRESS=text|widgets`` overrides.

Outside a kernel (scripts, pytest) it does nothing.
"""

from __future__ import annotations

import os
import sys

_DONE = False
_NO_DISPLAY = {"agg", "pdf", "ps", "svg", "cairo", "pgf", "template"}  # MPLBACKEND=Agg once dropped figures


def _kernel():
    """The running IPython kernel shell, or None (plain Python, terminal IPython)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if shell is not None and type(shell).__name__ == "ZMQInteractiveShell" else None


def widget_frontend() -> bool:
    """True where a frontend draws ipywidgets: Colab, a Jupyter server's session, VS Code.

    A kernel run by nbclient (``jupyter-book build``, nbval, papermill) has none of their marks."""
    choice = os.environ.get("CIRCUITS_PROGRESS", "").lower()
    if choice in ("text", "widgets"):
        return choice == "widgets"
    return "google.colab" in sys.modules or any(k in os.environ for k in ("JPY_SESSION_NAME", "VSCODE_PID"))


def describe_figure(fig) -> str:
    """A short text of what a matplotlib figure shows, from its titles, axis labels and legends."""
    parts = []
    if fig._suptitle is not None and fig._suptitle.get_text():
        parts.append(fig._suptitle.get_text())
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison and ax.get_label() != "<colorbar>"]
    for ax in axes:
        kind = "heat map" if ax.images else "scatter plot" if ax.collections and not ax.lines else \
            "bar chart" if ax.patches and not ax.lines else "plot" if ax.lines or ax.collections else "diagram"
        what = [f"{kind}" + (f" '{ax.get_title()}'" if ax.get_title() else "")]
        if ax.get_xlabel():
            what.append(f"x: {ax.get_xlabel()}")
        if ax.get_ylabel():
            what.append(f"y: {ax.get_ylabel()}")
        legend = ax.get_legend()
        if legend is not None:
            labels = [t.get_text() for t in legend.get_texts()]
            what.append("legend: " + ", ".join(labels[:8]) + (", …" if len(labels) > 8 else ""))
        parts.append("; ".join(what))
    head = f"Figure, {len(axes)} panels" if len(axes) > 1 else "Figure"
    return (head + ": " + " | ".join(parts)) if parts else head


def _png_with_description(fig) -> bytes:
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches="tight", metadata={"Description": describe_figure(fig)})


def _text_progress_bars() -> None:
    """tqdm.auto -> a text bar that writes one line, its final state, when it closes.

    A saved notebook keeps every ``\\r`` update of a live text bar (hundreds of lines once its stream
    pieces are merged for the page); its last state, with the time taken, is what a reader wants."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub is imported
    import tqdm.auto
    import tqdm.autonotebook
    import tqdm.std

    class FinalLineTqdm(tqdm.std.tqdm):
        def display(self, *args, **kwargs) -> None:  # no live updates
            return None

        def close(self) -> None:
            if self.disable or self.fp is None:
                return super().close()
            leave = self.pos == 0 if self.leave is None else self.leave
            self._ema_dt = lambda: None  # the rate over the whole run, as tqdm shows it when done
            line = str(self)
            self.leave = False  # tqdm's own close then writes nothing
            super().close()
            if leave:
                self.fp.write(line + "\n")
                self.fp.flush()

    tqdm.auto.tqdm = tqdm.autonotebook.tqdm = FinalLineTqdm
    if "transformers" in sys.modules:  # imported before helpers: switch its bars off explicitly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def setup() -> None:
    """Configure the kernel for the book (idempotent; a no-op outside a Jupyter kernel)."""
    global _DONE
    shell = _kernel()
    if _DONE or shell is None:
        return
    _DONE = True
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend().lower()
    if "inline" in backend or backend in _NO_DISPLAY:  # leave a backend the reader chose (ipympl, Qt) alone
        shell.run_line_magic("matplotlib", "inline")  # activates it now, so the formatter below stays
        shell.display_formatter.formatters["image/png"].for_type(Figure, _png_with_description)
    if not widget_frontend():
        _text_progress_bars()
