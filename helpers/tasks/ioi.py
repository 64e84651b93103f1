"""Indirect Object Identification prompts from a small grammar, after Wang et al. (2022).

"When Mary and John went to the store, John gave a drink to" -> " Mary". A prompt introduces two
names (IO and S), optionally says more, then has S (its second mention, S2) do something *to*
somebody; the answer is the introduced name that is not repeated. The grammar varies every part
that a template-only corpus would let a model lean on:

- the opening: none, a subordinate clause ("When … ,"), a sentence adverb ("Then, …."), or a
  scene-setting sentence before the names ("It was a warm day. …");
- how the two names are joined: "A and B went …", "A went … with B", "A saw B at …";
- zero to two sentences between the introduction and the final clause;
- a third name C, mentioned once, that the answer must skip: after S2 ("John, a friend of Kate,
  gave …") or in a sentence in between ("They saw Kate there.");
- the final verb of giving or saying.

Whole *rules* are held out of training (:data:`HELDOUT_RULES`): the "met" join, two in-between
sentences, the third name in an in-between sentence, two final verbs and three openings appear only
in the test split. So the test split measures generalisation to structures never seen, not only to
new compositions of seen parts. A fifth of the (IO, S) name pairs are held out too, and four names
never occur in IOI training at all (split ``"test_names"``). Each prompt has an ABC-corrupted twin
(S2 replaced by a fourth name, same length) and the character spans of IO, S1 and S2.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from .batch import MAX_REDRAWS, PromptBatch, article, fits, rng_of, span_of

NAMES = ["Mary", "John", "Alice", "Bob", "Tom", "James", "Sarah", "Emma", "David", "Michael",
         "Anna", "Paul", "Peter", "Kate", "Lisa", "Mark", "Laura", "Daniel", "Rachel", "Susan",
         "Jack", "Ryan", "Emily", "Chris", "Jessica", "George", "Helen", "Steven", "Andrew", "Amy",
         "Kevin", "Linda", "Jennifer", "Brian", "Karen", "Scott", "Eric", "Adam", "Jane", "Sam"]
PLACES = ["store", "garden", "restaurant", "school", "hospital", "office", "house", "station",
          "park", "beach", "library", "market"]
OBJECTS = ["drink", "snack", "ring", "ball", "book", "gift", "key", "cake", "flower", "letter",
           "bag", "hat"]
ADJECTIVES = ["warm", "cold", "quiet", "busy", "long", "nice"]

#: Openings. ``sub:*`` open a subordinate clause (the final clause follows a comma); ``adv:*`` and
#: ``scene:*`` open the text, the introduction is then a sentence of its own.
OPENINGS = {
    "none": "", "sub:When": "When", "sub:After": "After", "sub:While": "While", "sub:Once": "Once",
    "sub:Soon after": "Soon after", "sub:Just before": "Just before", "sub:As soon as": "As soon as",
    "sub:Before": "Before", "sub:Because": "Because", "sub:Since": "Since", "sub:Until": "Until",
    "sub:Right after": "Right after", "sub:Not long after": "Not long after", "sub:By the time": "By the time",
    "sub:Every time": "Every time", "sub:Now that": "Now that", "adv:Meanwhile": "Meanwhile,",
    "adv:Suddenly": "Suddenly,", "adv:In the end": "In the end,", "scene:party": "There was a party at the {PLACE}.",
    "adv:Then": "Then,", "adv:Later": "Later,", "adv:Afterwards": "Afterwards,", "adv:On Monday": "On Monday,",
    "adv:A bit later": "A bit later,", "adv:That evening": "That evening,", "scene:day": "It was a {ADJ} day.",
    "scene:place": "The {PLACE} was {ADJ}.", "scene:rain": "It was raining, and the {PLACE} was {ADJ}.",
    "scene:morning": "It was early in the morning.",
}
#: What the two named people did together: (plural form after "A and B", singular form before "with B").
MIDDLES = [("went to the {PLACE}", "went to the {PLACE}"), ("had lunch at the {PLACE}", "had lunch at the {PLACE}"),
           ("were working at the {PLACE}", "was working at the {PLACE}"),
           ("got {A_OBJECT} at the {PLACE}", "got {A_OBJECT} at the {PLACE}"),
           ("spent the day at the {PLACE}", "spent the day at the {PLACE}"),
           ("had a long argument", "had a long argument")]
#: "saw" and "called" join the names with a verb ("A saw B at the P"); "met" (held out) is another such verb.
JOINS = ("and", "with", "saw", "called", "met")
TRANSITIVE = {"saw": "{N1} saw {N2} at the {PLACE}", "called": "{N1} called {N2} from the {PLACE}",
              "met": "{N1} met {N2} at the {PLACE}"}
#: Sentences between the introduction and the final clause: no names, so they change no answer.
GAPS = ["It was a {ADJ} day.", "They stayed there for a long time.", "The {PLACE} was {ADJ}.",
        "They talked for a while.", "Nobody else was there."]
#: Final clauses after S2 (the answer follows "to"/"at"/"with").
ENDINGS = {"gave": "gave {A_OBJECT} to", "handed": "handed the {OBJECT} to", "threw": "threw the {OBJECT} to",
           "passed": "passed the {OBJECT} to", "said goodbye": "said goodbye to", "talked": "talked to",
           "brought": "brought {A_OBJECT} to", "wanted to give": "wanted to give {A_OBJECT} to",
           "sent": "sent {A_OBJECT} to", "showed": "showed the {OBJECT} to"}
#: The third name C: none, right after S2 (an appositive), or in a sentence in between.
DISTRACTORS = ("none", "after_s2", "in_gap")
APPOSITIVES = ["a friend of {C},", "who knew {C},", "like {C},"]

#: Grammar rules that occur only in the test split: whole structures never seen in training.
HELDOUT_RULES = {"join": ("met",), "gap": (2,), "distractor": ("in_gap",), "ending": ("sent", "showed"),
                 "opening": ("sub:As soon as", "adv:That evening", "scene:morning")}


@dataclass(frozen=True)
class Structure:
    """One choice per grammar rule; ``gap_ids`` index :data:`GAPS`; ``appositive`` indexes :data:`APPOSITIVES`."""

    opening: str
    join: str
    middle: int
    gap_ids: tuple[int, ...]
    distractor: str
    appositive: int
    ending: str

    @property
    def heldout_rules(self) -> list[str]:
        """The held-out rules this structure uses (empty for a training structure)."""
        out = [f"opening={self.opening}"] if self.opening in HELDOUT_RULES["opening"] else []
        out += [f"join={self.join}"] if self.join in HELDOUT_RULES["join"] else []
        out += [f"gap={len(self.gap_ids)}"] if len(self.gap_ids) in HELDOUT_RULES["gap"] else []
        out += [f"distractor={self.distractor}"] if self.distractor in HELDOUT_RULES["distractor"] else []
        out += [f"ending={self.ending}"] if self.ending in HELDOUT_RULES["ending"] else []
        return out

    def template(self) -> str:
        """The template string: slots {N1} {N2} {S} {C} {PLACE} {OBJECT} {A_OBJECT} {ADJ}."""
        plural, singular = MIDDLES[self.middle]
        if self.join == "and":
            intro = f"{{N1}} and {{N2}} {plural}"
        elif self.join == "with":
            intro = f"{{N1}} {singular} with {{N2}}"
        else:
            intro = TRANSITIVE[self.join]
        opening = OPENINGS[self.opening]
        gaps = [GAPS[i] for i in self.gap_ids]
        if self.distractor == "in_gap":
            gaps = gaps[:-1] + ["They saw {C} there."] if gaps else ["They saw {C} there."]
        s2 = "{S}, " + APPOSITIVES[self.appositive].format(C="{C}") if self.distractor == "after_s2" else "{S}"
        final = f"{s2} {ENDINGS[self.ending]}"
        if self.opening.startswith("sub:") and not gaps:
            return f"{opening} {intro}, {final}"
        if self.opening.startswith("sub:"):
            return f"{opening} {intro}, they were happy. " + " ".join(gaps) + f" {final}"
        head = f"{opening} {intro}." if opening else f"{intro}."
        return " ".join([head, *gaps, final])


def sample_structure(rng: random.Random, split: str = "train") -> Structure:
    """A random structure: training rules only (``train``), at least one held-out rule (``test``), any (``all``)."""
    while True:
        gap_n = rng.choice((0, 0, 1, 1, 2))
        distractor = rng.choice(DISTRACTORS)
        if distractor == "in_gap" and gap_n == 0:
            gap_n = 1
        st = Structure(opening=rng.choice(sorted(OPENINGS)), join=rng.choice(JOINS),
                       middle=rng.randrange(len(MIDDLES)), gap_ids=tuple(rng.sample(range(len(GAPS)), gap_n)),
                       distractor=distractor, appositive=rng.randrange(len(APPOSITIVES)),
                       ending=rng.choice(sorted(ENDINGS)))
        held = bool(st.heldout_rules)
        if split == "all" or held == (split in ("test", "test_names")):
            return st


def _curated(split: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        t = sample_structure(rng, split).template()
        if t not in out:
            out.append(t)
    return out


#: Fixed samples of training and held-out templates, for chapters that need one template (equal lengths).
#: The first held-out ones are classic frames (a subordinate opening, no third name) with one held-out rule.
HELDOUT_TEMPLATES = [
    "When {N1} and {N2} went to the {PLACE}, {S} sent {A_OBJECT} to",
    "When {N1} and {N2} went to the {PLACE}, {S} showed the {OBJECT} to",
    "As soon as {N1} and {N2} went to the {PLACE}, {S} gave {A_OBJECT} to",
    "After {N1} met {N2} at the {PLACE}, {S} gave {A_OBJECT} to",
    "{N1} and {N2} went to the {PLACE}. It was a {ADJ} day. They talked for a while. {S} gave {A_OBJECT} to",
] + _curated("test", 25, 11)
TRAIN_TEMPLATES = [
    "When {N1} and {N2} went to the {PLACE}, {S} gave {A_OBJECT} to",
    "Then, {N1} and {N2} had lunch at the {PLACE}. {S} handed the {OBJECT} to",
] + _curated("train", 28, 12)
TEMPLATES = TRAIN_TEMPLATES + HELDOUT_TEMPLATES
#: Four names never occur in IOI training (only in filler text): the "unseen names" split.
HELDOUT_NAMES = NAMES[9::10]
TRAIN_NAMES = [n for n in NAMES if n not in HELDOUT_NAMES]
SPLITS = ("train", "test", "test_names", "all")
ORDERS = ("ABBA", "BABA")


def heldout_pair(a: str, b: str) -> bool:
    """Whether the (unordered) name pair is held out of training: a fixed fifth of all pairs."""
    i, j = sorted((NAMES.index(a), NAMES.index(b)))
    return (i * 7 + j * 3) % 5 == 0


def _names(rng: random.Random, split: str, pool: list[str] | None) -> tuple[str, str, str, str]:
    """(IO, S, C, D): training pairs avoid held-out pairs, test pairs are held out; C and D are others."""
    if pool is not None:
        io, s, c, d = rng.sample(pool, 4)
        return io, s, c, d
    while True:
        if split == "test_names":
            io = rng.choice(HELDOUT_NAMES)
            s, c, d = rng.sample(TRAIN_NAMES, 3)
            return io, s, c, d
        names = NAMES if split == "all" else TRAIN_NAMES
        io, s, c, d = rng.sample(names, 4)
        if split == "all" or heldout_pair(io, s) == (split == "test"):
            return io, s, c, d


def fill(template: str, io: str, s: str, place: str, obj: str, order: str, c: str = "Kate", adj: str = "warm") -> str:
    """One prompt from a template: ``order`` ``"ABBA"`` puts IO first, ``"BABA"`` puts S first."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    n1, n2 = (io, s) if order == "ABBA" else (s, io)
    return template.format(N1=n1, N2=n2, S=s, C=c, PLACE=place, OBJECT=obj, A_OBJECT=f"{article(obj)} {obj}",
                           ADJ=adj)


def generate(n: int, split: str = "train", seed: int | random.Random = 0, order: str | None = None,
             names: list[str] | None = None, templates: list[str] | None = None,
             rules: dict[str, object] | None = None, tokenizer=None) -> PromptBatch:
    """``n`` IOI prompts with ABC-corrupted twins.

    ``order`` fixes ``"ABBA"``/``"BABA"`` (alternating by default); ``templates`` restricts to given
    template strings (e.g. one of :data:`HELDOUT_TEMPLATES`, so all prompts have the same length);
    ``rules`` fixes grammar rules (e.g. ``{"join": "met"}``) and samples the others for the split.
    ``tokenizer`` (a model or tokenizer): redraw a prompt's names (and place, object, adjective) until
    its names are single tokens for it where the positions need them: under GPT-2's BPE a name that
    starts a prompt (opening "none") has no leading space, and "Emma", "Helen", "Linda", "Karen" are then
    two tokens. ``None`` (the default) never redraws: the organism's prompt sets, which the chapters'
    measurements rest on, are the same with or without it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if order is not None and order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS} or None (alternating), got {order!r}")
    if names is not None and len(set(names)) < 4:
        raise ValueError("need at least four distinct names (IO, S, a third name C and the corrupting D)")
    rng = rng_of(seed)
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for i in range(n):
        structure = None
        if templates:
            tpl = rng.choice(templates)
        else:
            structure = _sample_with(rng, split, rules or {})
            tpl = structure.template()
        o = order or ORDERS[i % 2]
        for _ in range(MAX_REDRAWS):
            io, s, c, d = _names(rng, split, names)
            place, obj, adj = rng.choice(PLACES), rng.choice(OBJECTS), rng.choice(ADJECTIVES)
            text = fill(tpl, io, s, place, obj, o, c=c, adj=adj)
            s1 = span_of(text, s)
            s2 = span_of(text, s, s1[1])
            span = {"IO": span_of(text, io), "S1": s1, "S2": s2}
            wrong = text[:s2[0]] + d + text[s2[1]:]
            if fits(tokenizer, text, " " + io, " " + s, span, wrong):
                break
        else:
            raise ValueError(f"no names that are single tokens for this model in {MAX_REDRAWS} draws for "
                             f"template {tpl!r} (last: {text!r})")
        texts.append(text)
        corr.append(wrong)
        answers.append(" " + io)
        distr.append(" " + s)
        spans.append(span)
        meta.append({"template": tpl, "order": o, "IO": io, "S": s, "C": c, "D": d,
                     "structure": structure, "heldout_rules": structure.heldout_rules if structure else None})
    return PromptBatch("ioi", texts, answers, distr, spans, corr, meta)


def _sample_with(rng: random.Random, split: str, rules: dict[str, object]) -> Structure:
    """A structure of ``split`` with some rules fixed: the others are drawn from the training rules.

    So ``generate(..., split="test", rules={"join": "met"})`` measures one held-out rule alone.
    """
    if not rules:
        return sample_structure(rng, split)
    unknown = set(rules) - {"opening", "join", "middle", "gap", "distractor", "appositive", "ending"}
    if unknown:
        raise ValueError(f"unknown grammar rules {sorted(unknown)}")
    st = sample_structure(rng, "train")
    fixed = {k: v for k, v in rules.items() if k != "gap"}
    if "gap" in rules:
        fixed["gap_ids"] = tuple(rng.sample(range(len(GAPS)), int(rules["gap"])))
    return dataclasses.replace(st, **fixed)
