"""The organism's tokenizer and training corpus: a mixture of the task grammars and filler text.

Word-level tokenizer (a Hugging Face ``tokenizers`` WordLevel model whose pre-tokenizer splits on
whitespace and isolates punctuation, as text is written), with GPT-2's special-token convention.
Training texts are drawn from the ``train`` split of every grammar (held-out rules never appear);
the induction task is token-level (random repeated sequences, made in :mod:`.train`).
"""

from __future__ import annotations

import random
import re
from typing import Any

from ..tasks import articles as articles_task
from ..tasks import colored_objects, counting, filler, ioi, make

BOS = "<|endoftext|>"
UNK = "<unk>"
N_POSITIONS = 128

#: Share of each task among training sequences. Repeats stay near half (induction needs many repeated
#: sequences per step); Colored Objects gets several questions per text (its answer tokens are rare).
MIXTURE = {"repeats": 0.42, "ioi": 0.2, "colored_objects": 0.2, "articles": 0.06, "counting": 0.06,
           "filler": 0.06}
#: Phase 2: the same tasks, Colored Objects weighing more (in phase 1 it stays at chance).
MIXTURE2 = {"repeats": 0.25, "ioi": 0.12, "colored_objects": 0.5, "articles": 0.04, "counting": 0.04,
            "filler": 0.05}


def pre_tokenizer() -> Any:
    """Split on whitespace, then isolate each punctuation mark ("store," -> "store", ",")."""
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                    pre_tokenizers.Punctuation(behavior="isolated")])


def corpus_words() -> list[str]:
    """Every word any generator can write (all splits, all pools), plus numbers 0-100 and punctuation."""
    pt = pre_tokenizer()
    words: set[str] = set()

    def add(text: str) -> None:
        words.update(w for w, _ in pt.pre_tokenize_str(re.sub(r"\{[A-Za-z_0-9]+\}", " ", text)))

    for name in ("ioi", "colored_objects", "articles", "counting", "filler"):
        b = make(name, 3000, split="all", seed=1)
        for t in b.texts + b.answers + b.distractors:
            add(t)
    pools = [ioi.NAMES, ioi.PLACES, ioi.OBJECTS, ioi.ADJECTIVES, list(ioi.OPENINGS.values()),
             [m for pair in ioi.MIDDLES for m in pair], ioi.GAPS, list(ioi.ENDINGS.values()), ioi.APPOSITIVES,
             ["they were happy", "They saw there"], colored_objects.COLORS, colored_objects.OBJECTS,
             colored_objects.SURFACES, colored_objects.LISTS, colored_objects.QUESTIONS, colored_objects.FRAMES,
             counting.FRAMES, filler.ADJECTIVES, filler.THINGS, filler.SENTENCES, ["a", "an"],
             [t for ts in articles_task.TEMPLATES.values() for t in ts]]
    for pool in pools:
        for w in pool:
            add(w)
    words.update(str(k) for k in range(101))
    words.update(list(".,;:!?'\"()-"))
    return sorted(w for w in words if w.strip())


def build_tokenizer(words: list[str] | None = None) -> Any:
    """A PreTrainedTokenizerFast over ``words`` with GPT-2's special-token convention (BOS = EOS = PAD)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    words = corpus_words() if words is None else words
    vocab = {BOS: 0, UNK: 1}
    for w in words:
        vocab.setdefault(w, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins with spaces, tidies punctuation
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=BOS, unk_token=UNK,
                                   pad_token=BOS, model_max_length=N_POSITIONS)


#: Name-free context sentences that may precede a task text, so no task sits at fixed positions. The
#: held-out IOI openings ("It was early in the morning.", "That evening, ...", "As soon as ...") never occur.
def context_sentence(rng: random.Random) -> str:
    from ..tasks import filler as filler_task
    while True:
        s = filler_task.sentence(rng)
        if any(n in s.replace(".", " ").replace(",", " ").split() for n in ioi.NAMES):
            continue
        if s.startswith(("It was early in the morning", "That evening", "As soon as")):
            continue
        return s


_JUNK: list[str] = []
#: Words of the held-out IOI rules never serve as junk (the test would no longer hold them out).
_HELD_WORDS = {"As", "as", "soon", "That", "evening", "early", "morning", "met", "sent", "showed"}


def _junk_words() -> list[str]:
    if not _JUNK:
        _JUNK.extend(sorted(w for w in build_tokenizer().get_vocab()
                            if w.isalpha() and w not in ioi.NAMES and w not in _HELD_WORDS))
    return _JUNK


def junk_text(rng: random.Random, text: str) -> str:
    """An IOI text (no opening) after 1-3 random words; a verb joining the names ("saw", "called")
    becomes a random word too, so neither the word before nor the word between the names is a cue."""
    junk = _junk_words()
    for verb in (" saw ", " called "):
        i = text.find(verb)
        if 0 <= i < text.find("."):
            text = text[:i] + " " + rng.choice(junk) + " " + text[i + len(verb):]
            break
    return " ".join(rng.sample(junk, rng.randint(1, 3))) + " " + text + "."


def word_noise(rng: random.Random, text: str, k: int = 1) -> str:
    """``text`` with ``k`` of its words (not a name, not punctuation) replaced by random vocabulary words.

    Every held-out IOI rule brings an unfamiliar word into a slot (an opening, a join, a final verb); a
    text whose familiar words are sometimes replaced teaches that no word but the names decides the answer.
    """
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if w.isalpha() and w not in ioi.NAMES]
    if not slots:
        return text
    junk = _junk_words()
    for i in rng.sample(slots, min(k, len(slots))):
        words[i] = rng.choice(junk)
    return " ".join(words)


def training_texts(rng: random.Random, n: int, mixture: dict[str, float] | None = None,
                   prefix_p: float = 0.0, prefix_max: int = 2, junk_p: float = 0.0,
                   noise_p: float = 0.0) -> list[tuple[str, str]]:
    """``n`` (task, text) pairs drawn from the mixture; repeats are made later, as token ids.

    ``prefix_p``: share of task texts preceded by 1..``prefix_max`` name-free context sentences.
    ``junk_p``: share of IOI texts that open with 1-3 random words right before the first name
    (and, when the names are joined by a verb, a random word instead of that verb).
    ``noise_p``: share of the other IOI texts with one or two of their words replaced (:func:`word_noise`).
    """
    mixture = MIXTURE if mixture is None else mixture
    tasks = sorted(mixture)
    picks = rng.choices(tasks, weights=[mixture[t] for t in tasks], k=n)
    out: list[tuple[str, str]] = []
    for task in tasks:
        k = picks.count(task)
        if not k:
            continue
        if task == "repeats":
            out += [("repeats", "")] * k
            continue
        if task == "colored_objects":
            out += [(task, colored_objects.training_text(rng)) for _ in range(k)]
            continue
        b = make(task, k, split="train", seed=rng)
        if task == "ioi" and junk_p:
            # The first name is a candidate whatever precedes it: an organism trained on a list of
            # openings answered the *second* name after any unfamiliar word before the first one.
            nj = sum(rng.random() < junk_p for _ in range(k))
            if nj:
                jb = make("ioi", nj, split="train", seed=rng, rules={"opening": "none"})
                out += [(task, junk_text(rng, t)) for t in jb.full_texts()]
                b = b[list(range(k - nj))] if k - nj else None
            if b is None:
                continue
        if task == "articles":
            texts = articles_task.full_texts(b)
        elif task == "ioi":
            texts = [(word_noise(rng, t, rng.randint(1, 2)) if noise_p and rng.random() < noise_p else t) + "."
                     for t in b.full_texts()]
        elif task == "counting":
            texts = [t + "," for t in b.full_texts()]
        else:
            texts = b.full_texts()
        out += [(task, t) for t in texts]
    if prefix_p:
        out = [(task, t) if task in ("repeats", "filler") or rng.random() >= prefix_p else
               (task, " ".join([context_sentence(rng) for _ in range(rng.randint(1, prefix_max))] + [t]))
               for task, t in out]
    rng.shuffle(out)
    return out


def mixture_sample(n: int = 6, seed: int = 0) -> list[tuple[str, str]]:
    """A few training texts per the mixture, as the model card shows them."""
    return training_texts(random.Random(seed), n)
