"""Point every chapter's Colab badge and Colab set-up cell at the repository named in _config.yml.

_config.yml's ``repository.url`` / ``branch`` is the one place the repository is set (the launch buttons
read it). A notebook opened on Colab has only its own text, so each chapter carries a copy in its badge and
in its ``git clone``; this script rewrites those copies, and the book build (book/_ext/book_html.py) fails
on any that disagree. Usage: ``python scripts/set_repository.py && make sync``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COLAB = re.compile(r"(colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+/blob/[\w./-]+?/(book/[\w.-]+\.ipynb)")
CLONE = re.compile(r"(git clone [^\n]*?)https://github\.com/[\w.-]+/[\w.-]+?(?:\.git)?(?![\w.-])")


def configured() -> tuple[str, str]:
    """``(owner/name, branch)`` from _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    m = re.match(r"https://github\.com/([\w.-]+/[\w.-]+?)/?$", repo["url"].removesuffix(".git"))
    if m is None:
        raise SystemExit(f"_config.yml: repository.url must be https://github.com/OWNER/NAME, got {repo['url']!r}")
    return m[1], repo.get("branch", "main")


def rewrite(text: str, repo: str, branch: str) -> str:
    """``text`` with its Colab links and ``git clone`` URLs naming ``repo`` at ``branch``."""
    text = COLAB.sub(lambda m: f"{m[1]}{repo}/blob/{branch}/{m[2]}", text)
    return CLONE.sub(lambda m: f"{m[1]}https://github.com/{repo}", text)


def main() -> int:
    repo, branch = configured()
    for path in sorted((ROOT / "book").glob("*.py")):
        old = path.read_text()
        new = rewrite(old, repo, branch)
        if new != old:
            path.write_text(new)
            print(f"{path.relative_to(ROOT)}: now {repo}@{branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
