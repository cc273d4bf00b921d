"""BERT from a local Hugging Face folder (`text classify train --model bert --pretrained DIR`): transformers'
own `BertModel` with the folder's weights, its pooled CLS output through dropout into our linear `head`
(what Hugging Face's BertForSequenceClassification does), behind dltool's model interface.

Why wrap transformers' module rather than convert the weights into dltool's `bert`: ours is pre-norm
(a layer norm before each sublayer and one after the stack, which trains from scratch without warm-up)
while Hugging Face's BERT is post-norm (a layer norm after each residual sum), with token-type embeddings
and its own layer-norm epsilon. No renaming of keys maps one onto the other, and giving our encoder a
post-norm switch would be a second encoder under one name. Running transformers' module computes the
folder's network exactly; the price is the optional `hf` extra wherever such a model file is used.

The model file is still tensors and plain data: `arch_kwargs` holds the folder's config.json as a dict
(`BertConfig(**config)` rebuilds the network without the folder), `state_dict` the weights, and the
vocabulary the folder's tokenizer as JSON (dltool.text.vocab, kind `hf`). Nothing is ever downloaded:
every load is `local_files_only`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from dltool.core.errors import DltoolError, InputError
from dltool.nn.attention import padding_mask
from dltool.text.models import MODELS

INSTALL = "pip install 'dltool[hf]'"
# what a Hub model id looks like ("bert-base-uncased", "google-bert/bert-base-uncased"): a missing path of
# this shape was most likely meant as a name to download
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def missing_folder(path: Path, kind: str) -> InputError:
    """--pretrained PATH that does not exist: a close local name; for what could be a Hub name, how to fetch it."""
    from dltool.core.io import close_path

    flag = f"--pretrained '{path}'"
    close = close_path(path)
    if close is None and HUB_NAME.fullmatch(str(path)) and not Path(path.parts[0]).is_dir():
        return InputError(f"{flag}: no such local folder (dltool never downloads a model by name)",
                          f"if '{path}' is a Hugging Face Hub name, download it elsewhere "
                          f"(hf download {path} --local-dir DIR) and pass --pretrained DIR")
    return InputError(f"{flag}: no such local folder", close or f"pass a local Hugging Face {kind} folder")


def transformers_module():
    """transformers, quiet (its load report and progress bars: we say what matters), or a clear error."""
    try:
        import transformers
    except ImportError:
        raise DltoolError("a Hugging Face BERT needs the optional 'transformers' package",
                          f"install it with {INSTALL}") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


class HFBertClassifier(nn.Module):
    def __init__(self, config: dict, num_classes: int):
        super().__init__()
        transformers = transformers_module()
        hf_config = transformers.BertConfig(**config)
        self.bert = transformers.BertModel(hf_config)  # with its pooler: tanh(Linear(CLS state))
        dropout = hf_config.classifier_dropout
        self.drop = nn.Dropout(hf_config.hidden_dropout_prob if dropout is None else dropout)
        self.feature_dim = hf_config.hidden_size
        self.head = nn.Linear(self.feature_dim, num_classes)

    @property
    def embedding(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def forward_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = padding_mask(lengths, ids.shape[1]).long()
        return self.bert(input_ids=ids, attention_mask=keep).pooler_output

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(ids, lengths)))


# built from a folder's config (--model bert --pretrained DIR), never chosen by name: hence `folder`
@MODELS.register("bert_hf", folder=True)
def bert_hf(*, config: dict, num_classes: int):
    return HFBertClassifier(config, num_classes)


@dataclass(frozen=True)
class Folder:
    """What a Hugging Face BERT folder holds, as plain data and tensors."""

    config: dict                        # config.json, as BertConfig.to_dict() writes it
    state_dict: dict                    # BertModel's weights found in the folder
    missing: list[str]                  # BertModel weights the folder lacks (a masked-LM one has no pooler)
    tokenizer_json: str                 # its WordPiece tokenizer as `tokenizers` JSON


def read_folder(path) -> Folder:
    """Load a local Hugging Face BERT folder (config.json, model.safetensors or pytorch_model.bin, vocab.txt
    or tokenizer.json), never downloading: a path that is not a folder is an error."""
    path = Path(path)
    flag = f"--pretrained '{path}'"
    if not path.exists():
        raise missing_folder(path, "BERT")
    if not path.is_dir():
        raise InputError(f"{flag} is a file, not a folder", "pass the Hugging Face folder that holds config.json")
    if not (path / "config.json").is_file():
        raise InputError(f"{flag} has no config.json",
                         "pass a Hugging Face model folder (what save_pretrained or hf download write)")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{flag}: config.json is not JSON ({e})") from None
    if not isinstance(config, dict) or config.get("model_type") != "bert":
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise InputError(f"{flag} holds a '{kind}' model, not BERT", "pass a folder whose config.json says "
                         "\"model_type\": \"bert\"")
    if not any((path / name).is_file() for name in ("vocab.txt", "tokenizer.json")):
        raise InputError(f"{flag} has no vocab.txt or tokenizer.json", "the folder's own tokenizer is needed")
    transformers = transformers_module()
    try:
        tokenizer = transformers.BertTokenizerFast.from_pretrained(path, local_files_only=True)
        model, report = transformers.BertModel.from_pretrained(path, local_files_only=True, dtype=torch.float32,
                                                               output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise InputError(f"{flag} could not be loaded ({str(e).strip().splitlines()[0][:160]})",
                         "it needs config.json, model.safetensors or pytorch_model.bin, and vocab.txt") from None
    missing = sorted(report["missing_keys"])
    if any(not k.startswith("pooler.") for k in missing):  # only the pooler may be absent (masked-LM folders)
        raise InputError(f"{flag}: its weights do not fit its config.json ({len(missing)} tensors missing, e.g. "
                         f"{missing[0]})", "pass a complete BERT folder")
    config = model.config.to_dict()
    config.pop("_name_or_path", None)  # the folder's path on this machine: no part of the network
    state = {k: v for k, v in model.state_dict().items() if k not in missing}
    return Folder(config, state, missing, tokenizer.backend_tokenizer.to_str())
