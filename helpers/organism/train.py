"""Training the organism: deterministic batches, the loop, dense measurements and checkpoints.

Every ``eval_every`` steps the log records each task's held-out accuracy and, per head, the
attention scores that name the circuits' roles (previous-token, induction, duplicate-token on
repeated random sequences; on IOI prompts, END -> IO / S1 / S2 and S2 -> S1). Chapter 7 plots
these to show the circuits forming, without keeping more checkpoints.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from ..loading import write_checksums
from ..tasks import make
from ..tasks.evaluate import evaluate_all, evaluate_batch
from ..tasks.repeats import vocab_ids
from ..training import adamw
from .corpus import MIXTURE, MIXTURE2, N_POSITIONS, build_tokenizer, training_texts

#: Phase 1b (``TRAIN["curriculum"]``; a falsy value skips it), the Colored Objects curriculum: (prompt
#: forms, steps, prompts per step), a loss on the answer token only, beside a few mixture sequences. The lookup "the color written before the earlier copy of this object" is first
#: asked *at* the object ("pairs": "blue cup red pen green book . cup" -> " blue"), then one token
#: later ("pairs?": "... . cup ?"), then at the object inside a full prompt ("cut": the generator's
#: prompt cut after the question's object), then at the end of it ("full": the generator's prompt).
#: Asked only at the end of the full prompt, the answer loss sat at ln 3 (uniform over the listed
#: colors) for hundreds to thousands of steps, leaving it at a step that depended on the draw of
#: prompts; each stage here is learned within ~100 steps (experiments/organism-co-plateau/co_min.py).
CO_CURRICULUM = ((("pairs",), 150, 256), (("pairs", "pairs?"), 100, 256),
                 (("pairs", "pairs?", "cut", "full"), 200, 128))
#: The model: 4 layers x 8 heads (d_head 16), d_model 128, MLP 256 (GPT-2's shape, scaled down).
CONFIG = {"n_layer": 4, "n_head": 8, "n_embd": 128, "n_inner": 256, "n_positions": N_POSITIONS,
          "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
#: GPT-2's dropout, for the ``organism-dropout`` twin (same recipe otherwise).
DROPOUT = {"resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1}
#: What the twin's recipe changes besides dropout: a longer phase 1. With dropout, IOI forms later (held out,
#: seed 0: 0.53 at step 2,000, 0.74 at 2,400, 0.92 at 2,700), so 2,400 steps left it at about 0.7.
DROPOUT_TRAIN = {"steps": 3200}
TRAIN = {"steps": 2400, "batch_size": 128, "lr": 2e-3, "warmup": 100, "decay_frac": 0.25, "min_lr_frac": 0.1,
         "weight_decay": 0.01, "repeat_len": (4, 25), "eval_every": 100, "log_every": 25,
         "pos_init": "sinusoidal", "pos_scale": 0.05, "answer_weight": 10.0,
         "phase2_steps": 400, "phase2_lr": 1e-3, "phase2_eval_every": 50, "prefix_p": 0.5, "prefix_max": 2,
         "junk_p": 0.5, "noise_p": 0.3, "co_aux": 0, "co_aux_from": 600, "co_aux2": 64, "co_aux_weight": 4.0,
         "curriculum": CO_CURRICULUM, "curriculum_lr": 1e-3, "curriculum_mix": 32, "curriculum_eval_every": 25}
#: Intermediate checkpoints kept (tags ``step<k>``), loadable as ``load_model("organism@step<k>")``. One
#: more is kept at the first evaluation after phase 1 where Colored Objects is partly solved (:data:`PARTIAL`,
#: on both the held-out and the training prompts, so a chance-level fluctuation of 100 prompts does not count).
CHECKPOINT_STEPS = (500, 1000, 1500, 2000)
PARTIAL = (0.45, 0.75)
BETAS = (0.9, 0.98)


def _rows(tok: Any, rng: random.Random, gen: torch.Generator, n: int, vocab: torch.Tensor,
          repeat_len: tuple[int, int], mixture: dict[str, float] | None = None, prefix: tuple = (0.0, 2, 0.0)) -> list[list[int]]:
    rows = []
    for task, text in training_texts(rng, n, mixture, *prefix):
        if task == "repeats":
            L = rng.randint(*repeat_len)
            seq = vocab[torch.randperm(len(vocab), generator=gen)[:L]].tolist()
            rows.append([tok.bos_token_id] + seq + seq)
        else:
            rows.append([tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"])
    return rows


def co_form_rows(tok: Any, form: str, n: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """``n`` training prompts of one :data:`CO_CURRICULUM` form: token rows (unpadded) and answer ids."""
    from ..tasks import colored_objects as co

    if form in ("cut", "full"):
        b = make("colored_objects", n, "train", seed=seed)
        enc = b.encode(tok)
        rows = [r[: int(e) + 1].tolist() for r, e in zip(enc.tokens, enc.end)]
        if form == "cut":
            obj = [tok.convert_tokens_to_ids(m["objects"][m["target"]]) for m in b.meta]
            rows = [r[: max(i for i, t in enumerate(r) if t == q) + 1] for r, q in zip(rows, obj)]
        return rows, enc.answers.tolist()
    if form not in ("pairs", "pairs?"):
        raise ValueError(f"unknown Colored Objects form {form!r}")
    rng, rows, answers = random.Random(seed), [], []
    for _ in range(n):
        cols, objs, _ = co._scene(rng, "train", rng.choice((2, 3, 4)))
        t = rng.randrange(len(objs))
        text = " ".join(f"{c} {o}" for c, o in zip(cols, objs)) + f" . {objs[t]}" + (" ?" if form == "pairs?" else "")
        rows.append([tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"])
        answers.append(tok.convert_tokens_to_ids(cols[t]))
    return rows, answers


def _pad(tok: Any, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = min(max(len(r) for r in rows), N_POSITIONS)
    ids = torch.full((len(rows), T), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        r = r[:T]
        ids[i, :len(r)] = torch.tensor(r)
        labels[i, :len(r)] = torch.tensor(r)
    return ids, labels


def training_batches(tok: Any, seed: int, batch_size: int, vocab: torch.Tensor,
                     repeat_len: tuple[int, int], bucket: int = 4, mixture: dict[str, float] | None = None,
                     prefix: tuple = (0.0, 2, 0.0)):
    """Endless right-padded batches (ids, labels with -100 on padding), deterministic in ``seed``.

    Sequences are drawn ``bucket`` batches at a time and grouped by length, so little compute is
    spent on padding; the order of the grouped batches is shuffled.
    """
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    while True:
        rows = sorted(_rows(tok, rng, gen, batch_size * bucket, vocab, repeat_len, mixture, prefix), key=len)
        chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield _pad(tok, chunk)


def token_weights(tok: Any, ids: torch.Tensor, weight: float) -> torch.Tensor:
    """Loss weight per predicted token: ``weight`` on Colored Objects answers (the token after "A :"), else 1.

    In the mixture a color answer is about one token in 3,000, and a uniform loss left the task at
    chance; fine-tuning on the answer token alone solves it, so the answers weigh more here.
    """
    from ..tasks.colored_objects import COLORS
    colon = tok.convert_tokens_to_ids(":")
    colors = torch.tensor(tok.convert_tokens_to_ids(COLORS))
    w = torch.ones(ids.shape, dtype=torch.float32)
    after = torch.zeros_like(ids, dtype=torch.bool)
    after[:, 1:] = (ids[:, :-1] == colon) & torch.isin(ids[:, 1:], colors)
    w[after] = weight
    return w[:, 1:]  # aligned with the targets of positions 0 .. T-2


def lm_loss(logits: torch.Tensor, ids: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, weighted per target token, averaged over the non-padding targets."""
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                           ignore_index=-100, reduction="none").view_as(weights)
    valid = (labels[:, 1:] != -100).float() * weights
    return (ce * valid).sum() / valid.sum()


def sinusoidal_positions(n_pos: int, d: int, scale: float) -> torch.Tensor:
    """Sinusoidal position vectors (Vaswani et al.) used only to *initialise* GPT-2's learned ``wpe``."""
    pos = torch.arange(n_pos, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    pe = torch.zeros(n_pos, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe * scale


class HeadProbe:
    """Fixed inputs on which per-head role scores are read from a HF GPT-2's attention patterns."""

    def __init__(self, tok: Any, seq_len: int = 16, n: int = 24, seed: int = 4242) -> None:
        vocab = vocab_ids(tok)
        g = torch.Generator().manual_seed(seed)
        seqs = torch.stack([vocab[torch.randperm(len(vocab), generator=g)[:seq_len]] for _ in range(n)])
        self.rep = torch.cat([torch.full((n, 1), tok.bos_token_id), seqs, seqs], 1)
        self.L = seq_len
        batch = make("ioi", 48, split="test", seed=seed)
        self.ioi = batch.encode(tok)

    @torch.no_grad()
    def scores(self, model: Any) -> dict[str, list[list[float]]]:
        """Per layer and head: prev-token, induction, duplicate-token, and IOI attention scores."""
        att = torch.stack(model(self.rep, output_attentions=True).attentions, 1)  # [b, layer, head, q, k]
        L = self.L
        q = torch.arange(L + 1, 2 * L + 1)
        out = {"prev_token": att[..., torch.arange(2, 2 * L + 1), torch.arange(1, 2 * L)].mean((0, -1)),
               "induction": att[..., q, q - L + 1].mean((0, -1)),
               "duplicate": att[..., q, q - L].mean((0, -1))}
        e = self.ioi
        att = torch.stack(model(e.tokens, output_attentions=True).attentions, 1)
        rows = torch.arange(len(e.tokens))
        a_end = att[rows, :, :, e.end]  # [b, layer, head, k]
        for name, key in (("end_to_io", "IO"), ("end_to_s1", "S1"), ("end_to_s2", "S2")):
            out[name] = a_end[rows, :, :, e.positions[key]].mean(0)
        out["s2_to_s1"] = att[rows, :, :, e.positions["S2"], e.positions["S1"]].mean(0)
        return {k: [[round(float(x), 3) for x in row] for row in v] for k, v in out.items()}


def _save(model: Any, tok: Any, out: Path, extra: dict[str, Any] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "generation_config.json").unlink(missing_ok=True)
    for name, obj in (extra or {}).items():
        (out / name).write_text(json.dumps(obj, indent=1) + "\n")
    write_checksums(out)


class _Run:
    """The state one training run shares across its phases: model, log, probes, checkpoints."""

    def __init__(self, model: Any, tok: Any, out: Path, log: dict[str, Any], probe: HeadProbe,
                 checkpoint_steps: tuple[int, ...], progress: bool, answer_weight: float) -> None:
        self.model, self.tok, self.out, self.log, self.probe = model, tok, out, log, probe
        self.checkpoint_steps, self.progress, self.answer_weight = checkpoint_steps, progress, answer_weight
        self.t0 = time.time()

    def phase(self, opt: Any, batches: Any, lr_at: Any, first: int, last: int, eval_every: int, desc: str,
              co_aux: int = 0, co_aux_from: int = 0, co_aux_weight: float = 1.0) -> None:
        """Steps ``first`` .. ``last - 1``: optimise, log the loss, evaluate and keep checkpoints.

        From step ``co_aux_from`` on, each step adds ``co_aux`` Colored Objects prompts with a loss on
        the answer token only (their own deterministic draw, beside the mixture's batch).
        """
        from tqdm.auto import tqdm

        model, tok, log = self.model, self.tok, self.log
        ema = None
        bar = tqdm(range(first, last), desc=desc, disable=not self.progress, mininterval=10)
        for step in bar:
            model.train()
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            ids, labels = next(batches)
            loss = lm_loss(model(input_ids=ids).logits, ids, labels, token_weights(tok, ids, self.answer_weight))
            lm = loss.item()  # the logged loss: the mixture's alone, so an added term does not read as a jump
            if co_aux and step >= co_aux_from:
                enc = make("colored_objects", co_aux, "train", seed=10_000_019 + step).encode(tok)
                lg = model(input_ids=enc.tokens).logits
                rows = torch.arange(len(enc.tokens))
                loss = loss + co_aux_weight * torch.nn.functional.cross_entropy(lg[rows, enc.end].float(), enc.answers)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema = lm if ema is None else 0.95 * ema + 0.05 * lm
            done = step + 1
            if done % 25 == 0:
                log["loss"].append({"step": done, "loss": round(ema, 4), "time": round(time.time() - self.t0, 1)})
                bar.set_postfix(loss=f"{ema:.3f}")
            if done % eval_every == 0 or done == last or done in self.checkpoint_steps:
                self.evaluate(done, final=done == last, may_be_partial=co_aux > 0 and step >= co_aux_from)

    def curriculum(self, opt: Any, first: int, lr: float, eval_every: int, batches: Any = None,
                   stages: tuple = CO_CURRICULUM) -> int:
        """Phase 1b: the :data:`CO_CURRICULUM` stages from step ``first``; returns the step after them.

        Each step's prompts are split evenly among the stage's forms, each form its own seeded draw.
        ``batches`` (mixture batches), if given, add their language-model loss to every step, so the
        other tasks are not forgotten meanwhile.
        """
        from tqdm.auto import tqdm

        model, tok, log = self.model, self.tok, self.log
        step = first
        snaps: list[tuple[int, dict[str, torch.Tensor]]] = []  # every step's weights since the last evaluation
        for forms, n_steps, n in stages:
            for _ in tqdm(range(n_steps), desc=f"Colored Objects: {'+'.join(forms)}", disable=not self.progress,
                          mininterval=10):
                model.train()
                for g in opt.param_groups:
                    g["lr"] = lr
                rows, answers = [], []
                for k, form in enumerate(forms):
                    r, a = co_form_rows(tok, form, n // len(forms), 20_000_003 + 7 * step + k)
                    rows += r
                    answers += a
                ids, _ = _pad(tok, rows)
                end = torch.tensor([len(r) - 1 for r in rows])
                lg = model(input_ids=ids).logits[torch.arange(len(rows)), end]
                co_loss = torch.nn.functional.cross_entropy(lg.float(), torch.tensor(answers))
                loss, lm = co_loss, None
                if batches is not None:
                    mids, mlabels = next(batches)
                    loss = loss + lm_loss(model(input_ids=mids).logits, mids, mlabels,
                                          token_weights(tok, mids, self.answer_weight))
                    lm = (loss - co_loss).item()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
                if step % 25 == 0:
                    # "loss": the mixture's (as in the other phases; None without one), "co_loss": the answers'
                    log["loss"].append({"step": step, "loss": None if lm is None else round(lm, 4),
                                        "co_loss": round(co_loss.item(), 4), "time": round(time.time() - self.t0, 1),
                                        "curriculum": "+".join(forms)})
                if log["partial_checkpoint"] is None:
                    snaps.append((step, {k: v.detach().clone() for k, v in model.state_dict().items()}))
                if (step - first) % eval_every == 0:
                    self.evaluate(step, final=False, may_be_partial=True)
                    if log["partial_checkpoint"] is None and log["eval"][-1]["colored_objects"] > PARTIAL[1]:
                        self.partial_between(snaps[:-1])
                    snaps = []
        return step

    def partial_between(self, snaps: list[tuple[int, dict[str, torch.Tensor]]]) -> None:
        """Colored Objects jumped past :data:`PARTIAL` between two evaluations: keep the step in between nearest 50%.

        The jump can take fewer steps than ``curriculum_eval_every``, so every step's weights since the
        last evaluation are kept in memory; each is scored on the evaluation's Colored Objects prompts (held
        out and training), and the one whose held-out accuracy is nearest 0.5 among those inside
        :data:`PARTIAL` is evaluated in full and saved. The training itself is untouched (its weights are
        restored), so the final weights are the same with or without this search.
        """
        model = self.model
        now = {k: v.detach().clone() for k, v in model.state_dict().items()}
        test, train = make("colored_objects", 100, "test", seed=777), make("colored_objects", 100, "train", seed=778)
        best = None
        model.eval()
        for step, state in snaps:
            model.load_state_dict(state)
            acc = evaluate_batch(model, test)["accuracy"]
            ok = PARTIAL[0] <= min(acc, evaluate_batch(model, train)["accuracy"]) and acc <= PARTIAL[1]
            if ok and (best is None or abs(acc - 0.5) < abs(best[1] - 0.5)):
                best = (step, acc)
        if best is not None:
            model.load_state_dict(dict(snaps)[best[0]])
            self.evaluate(best[0], final=False, may_be_partial=True)
            for key in ("eval", "heads"):
                self.log[key].sort(key=lambda r: r["step"])
        model.load_state_dict(now)

    def evaluate(self, done: int, final: bool, may_be_partial: bool) -> None:
        """Held-out accuracy per task, the per-head scores, and a checkpoint where one is due."""
        model, log = self.model, self.log
        model.eval()
        res = evaluate_all(model, n=100, split="test", seed=777)
        row = {"step": done, **{k: round(v["accuracy"], 4) for k, v in res.items()}}
        for task in ("ioi", "colored_objects"):
            row[f"{task}_train"] = round(evaluate_batch(model, make(task, 100, "train", seed=778))["accuracy"], 4)
        log["eval"].append(row)
        log["heads"].append({"step": done, **self.probe.scores(model)})
        if self.progress:
            print(f"step {done} ({time.time() - self.t0:.0f}s): " + json.dumps(row), flush=True)
        partial = (may_be_partial and log["partial_checkpoint"] is None and not final
                   and PARTIAL[0] <= min(row["colored_objects"], row["colored_objects_train"])
                   and row["colored_objects"] <= PARTIAL[1])
        if partial:
            log["partial_checkpoint"] = f"step{done}"
        if (done in self.checkpoint_steps or partial) and not final:
            _save(model, self.tok, self.out / "checkpoints" / f"step{done}")


def train(out: str | Path, seed: int = 0, steps: int | None = None, threads: int = 1, dropout: bool = False,
          checkpoint_steps: tuple[int, ...] = CHECKPOINT_STEPS, progress: bool = True,
          resume_from: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Train the organism from scratch and save it (and its intermediate checkpoints) to ``out``.

    ``dropout=True`` trains the twin with GPT-2's dropout (and :data:`DROPOUT_TRAIN`'s longer phase 1).
    ``overrides`` replace entries of :data:`TRAIN` (e.g. ``lr=1e-3``) for experiments. ``resume_from`` (a phase-1 output directory
    of the same recipe) skips phase 1: phases 1b and 2 start from saved weights with new optimizers in
    both cases, so the result is the same.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    from ..runtime import seed_everything

    torch.set_num_threads(threads)
    seed_everything(seed)
    hp = {**TRAIN, **(DROPOUT_TRAIN if dropout else {}), **overrides}
    if steps is not None:
        hp["steps"] = steps
    out = Path(out)
    tok = build_tokenizer()
    config = {**CONFIG, **(DROPOUT if dropout else {})}
    cfg = GPT2Config(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **config)
    cfg._attn_implementation = "eager"  # attention patterns for the dense head scores
    model = GPT2LMHeadModel(cfg)
    if hp["pos_init"] == "sinusoidal":
        with torch.no_grad():
            model.transformer.wpe.weight.copy_(sinusoidal_positions(cfg.n_positions, cfg.n_embd, hp["pos_scale"]))
    model.tokenizer = tok  # lets helpers.tasks encode prompts for the bare HF model during training
    opt = adamw(model, hp["lr"], hp["weight_decay"], betas=BETAS)

    def lr_at(step: int) -> float:
        """Linear warm-up, constant, then a cosine decay over the last ``decay_frac`` of training."""
        if step < hp["warmup"]:
            return hp["lr"] * (step + 1) / hp["warmup"]
        start = hp["steps"] * (1 - hp["decay_frac"])
        if step < start:
            return hp["lr"]
        frac = (step - start) / max(1, hp["steps"] - start)
        return hp["lr"] * (hp["min_lr_frac"] + (1 - hp["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * frac)))

    log: dict[str, Any] = {"seed": seed, "config": config, "train": hp, "mixture": MIXTURE,
                           "vocab_size": len(tok), "loss": [], "eval": [], "heads": [], "partial_checkpoint": None}
    run = _Run(model, tok, out, log, HeadProbe(tok), checkpoint_steps, progress, hp["answer_weight"])
    if resume_from is None:
        batches = training_batches(tok, seed, hp["batch_size"], vocab_ids(tok), tuple(hp["repeat_len"]),
                                   prefix=(hp["prefix_p"], hp["prefix_max"], hp["junk_p"], hp["noise_p"]))
        run.phase(opt, batches, lr_at, 0, hp["steps"], hp["eval_every"], "training organism",
                  co_aux=hp["co_aux"], co_aux_from=hp["co_aux_from"])
    else:  # phase 1's weights, saved exactly: phase 2 below starts afresh from them either way
        model.load_state_dict(GPT2LMHeadModel.from_pretrained(resume_from).state_dict())
        prev = Path(resume_from) / "train_log.json"
        if prev.exists():
            log.update({k: v for k, v in json.loads(prev.read_text()).items()
                        if k in ("loss", "eval", "heads", "train_seconds")})
        run.t0 -= log.pop("train_seconds", 0.0)
    _save(model, tok, out / "checkpoints" / f"step{hp['steps']}")
    first2 = hp["steps"]
    if hp["curriculum"]:
        # Phase 1b: the Colored Objects curriculum, answers only, with a new AdamW at a constant rate.
        seed_everything(seed + 2)
        log["curriculum"] = [[list(f), k, n] for f, k, n in hp["curriculum"]]
        opt = adamw(model, hp["curriculum_lr"], hp["weight_decay"], betas=BETAS)
        mix = None
        if hp["curriculum_mix"]:
            mix = training_batches(tok, seed + 2, hp["curriculum_mix"], vocab_ids(tok), tuple(hp["repeat_len"]),
                                   prefix=(hp["prefix_p"], hp["prefix_max"], hp["junk_p"], hp["noise_p"]))
        first2 = run.curriculum(opt, hp["steps"], hp["curriculum_lr"], hp["curriculum_eval_every"], mix,
                                stages=hp["curriculum"])
    if hp["phase2_steps"]:
        # Phase 2: the same tasks with Colored Objects weighing more, a new AdamW and its own batches.
        seed_everything(seed + 1)
        log["mixture2"] = MIXTURE2
        opt = adamw(model, hp["phase2_lr"], hp["weight_decay"], betas=BETAS)
        batches = training_batches(tok, seed + 1, hp["batch_size"], vocab_ids(tok), tuple(hp["repeat_len"]),
                                   mixture=MIXTURE2, prefix=(hp["prefix_p"], hp["prefix_max"], hp["junk_p"], hp["noise_p"]))
        n2 = hp["phase2_steps"]

        def lr2(step: int) -> float:
            frac = (step - first2) / n2
            return hp["phase2_lr"] * (hp["min_lr_frac"] + (1 - hp["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * frac)))

        run.phase(opt, batches, lr2, first2, first2 + n2, hp["phase2_eval_every"], "phase 2",
                  co_aux=hp["co_aux2"], co_aux_from=first2, co_aux_weight=hp["co_aux_weight"])
    t0 = run.t0
    log["train_seconds"] = round(time.time() - t0, 1)
    log["torch"] = torch.__version__
    log["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # the kernels used: AVX512, AVX2, …
    model.eval()
    if out.exists():
        for f in out.iterdir():
            if f.is_file():
                f.unlink()
    _save(model, tok, out, extra={"train_log.json": log})
    return log
