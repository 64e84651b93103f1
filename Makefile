# The two commands of the README:  `make book`  and  `make test`.
# Each one sets up .venv from requirements.txt (+ constraints.txt) on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Keep the run offline and quiet: the book never needs the hub by default.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY = 1
export PYDEVD_DISABLE_FILE_VALIDATION = 1
# No MPLBACKEND here: in a notebook kernel `import helpers` draws figures inline (helpers/notebook.py).
# Plotly figures as HTML that loads plotly.js; the book's pages load it from _static (book/_ext/book_html.py).
export PLOTLY_RENDERER ?= notebook_connected

.PHONY: setup book test browser lint sync measure clean rehearse

$(BIN)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(BIN)/.installed

book: setup
	$(BIN)/jupyter-book build . --warningiserror --keep-going

test: setup
	$(BIN)/python -m pytest tests book --nbval-lax --nbval-current-env -v --durations=20

# The built book (after `make book`) in headless Chromium, network blocked (tests/test_browser.py);
# needs Debian's chromium (`apt-get install chromium`). Screenshots and page weights: _build/screenshots/.
browser: setup
	BOOK_BROWSER_REQUIRED=1 $(BIN)/python -m pytest tests/test_browser.py -v --durations=5

# The GPT-2 path offline: every chapter on random-weight GPT-2s (real configs, GPT-2's real tokenizer),
# one at a time on one thread; prints time and peak memory per chapter (scripts/rehearse.py).
rehearse: setup
	OMP_NUM_THREADS=1 CIRCUITS_DEVICE=cpu $(BIN)/python scripts/rehearse.py --json _build/rehearsal.jsonl

# ruff pinned: its default rule set changes between releases.
lint: setup
	$(BIN)/python -m pip install --quiet "ruff==0.17.6"
	$(BIN)/ruff check helpers tests scripts book/*.py

# After editing a chapter's book/X.py: rewrite its paired book/X.ipynb (tests/test_pairs.py checks the pairs).
sync: setup
	$(BIN)/jupytext --sync book/*.py

# Re-measure one chapter over its seeds: `make measure CHAPTER=04` -> book/measured/ch04.json.
measure: setup
	OMP_NUM_THREADS=1 $(BIN)/python scripts/measure.py $(CHAPTER)

clean:
	rm -rf _build
