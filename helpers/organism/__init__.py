"""The book's model organism: a small GPT-2 trained here, on CPU, on a mixture of task grammars.

- :mod:`.corpus`: the word-level tokenizer and the training mixture (train splits only);
- :mod:`.train`: deterministic batches, the training loop, dense per-head measurements, checkpoints;
- :mod:`.card`: the model card's figures (train-structure and held-out-structure accuracy per task);
- ``python -m helpers.organism``: the command line that retrains it.

``helpers.load_model("organism")`` boots the result through the same TransformerBridge path as GPT-2.
"""

from .corpus import BOS, MIXTURE, UNK, build_tokenizer, corpus_words, mixture_sample, training_texts
from .train import CONFIG, DROPOUT, TRAIN, train

__all__ = ["BOS", "CONFIG", "DROPOUT", "MIXTURE", "TRAIN", "UNK", "build_tokenizer", "corpus_words",
           "mixture_sample", "train", "training_texts"]
