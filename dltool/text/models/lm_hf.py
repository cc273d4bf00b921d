"""A GPT-2 from a local Hugging Face folder (`text lm train --pretrained DIR`): transformers' own
GPT2LMHeadModel with the folder's weights, behind the language models' interface (`logits, state =
model(ids, state)`, the state being transformers' key/value cache). As with BERT (bert_hf.py says why),
the folder's network is run, not converted; the model file keeps its config.json as plain data, the
weights, and the tokenizer as JSON, so it needs the folder no more (only the `hf` extra). Nothing is
ever downloaded: every load is `local_files_only`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from dltool.core.errors import InputError
from dltool.core.registry import Registry
from dltool.text.models.bert_hf import missing_folder, transformers_module

#: built from a folder's config, never chosen by --model
FOLDER_MODELS = Registry("model")
MODEL_TYPES = ("gpt2",)


class HFCausalLM(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        transformers = transformers_module()
        self.lm = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config))
        self.context = self.lm.config.n_positions
        # transformers renamed past_key_values to cache (5.x, the old name deprecated)
        import inspect

        self._cache_arg = "cache" if "cache" in inspect.signature(self.lm.forward).parameters else "past_key_values"

    def forward(self, ids: torch.Tensor, state=None):
        out = self.lm(input_ids=ids, use_cache=True, **{self._cache_arg: state})
        return out.logits, getattr(out, self._cache_arg)


@FOLDER_MODELS.register("gpt2_hf")
def gpt2_hf(*, config: dict):
    return HFCausalLM(config)


@dataclass(frozen=True)
class Folder:
    config: dict            # config.json as GPT2Config.to_dict() writes it
    state_dict: dict        # GPT2LMHeadModel's weights
    tokenizer_json: str     # its byte-level BPE tokenizer as `tokenizers` JSON
    eos: int                # the end-of-text token: dltool's boundary token


def read_folder(path) -> Folder:
    """A local GPT-2 folder (config.json, weights, tokenizer.json or vocab.json + merges.txt); a model name
    or a folder of another kind is refused with one line."""
    path = Path(path)
    flag = f"--pretrained '{path}'"
    if not path.exists():
        raise missing_folder(path, "GPT-2")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise InputError(f"{flag} is not a Hugging Face model folder (no config.json)",
                         "pass the folder save_pretrained or hf download wrote")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{flag}: config.json is not JSON ({e})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind not in MODEL_TYPES:
        raise InputError(f"{flag} holds a '{kind}' model, not a GPT-2 causal language model",
                         "pass a folder whose config.json says \"model_type\": \"gpt2\"")
    transformers = transformers_module()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = transformers.GPT2LMHeadModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError) as e:
        raise InputError(f"{flag} could not be loaded ({str(e).strip().splitlines()[0][:160]})",
                         "it needs config.json, model.safetensors or pytorch_model.bin, and its tokenizer") from None
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else model.config.eos_token_id
    if eos is None:
        raise InputError(f"{flag}: its tokenizer has no end-of-text token", "pass a GPT-2 folder with one")
    config = model.config.to_dict()
    config.pop("_name_or_path", None)  # the folder's path on this machine: no part of the network
    return Folder(config, model.state_dict(), tokenizer.backend_tokenizer.to_str(), int(eos))
