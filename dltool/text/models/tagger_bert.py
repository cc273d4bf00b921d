"""A Hugging Face BERT as a tagger (`text tag train --model bert --pretrained DIR`): transformers' own
`BertModel` (no pooler) with the folder's weights, dropout and a linear layer over the hidden state of each
word's FIRST word piece (what BertForTokenClassification and the CoNLL-2003 recipes do). dltool.text.models.bert_hf says why the module is wrapped rather than converted.

Inputs, as every tagger's: (word-piece ids (N, P) with [CLS] ... [SEP], the sentences' word counts (N,),
each word's first piece position (N, L)); the model file holds the folder's config.json as plain data and
the tokenizer as JSON (see dltool.text.tag.PieceVocab).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.text.models.bert_hf import transformers_module
from dltool.text.models.tagger import TAGGERS, SequenceScoring


class HFBertTagger(SequenceScoring, nn.Module):
    def __init__(self, config: dict, num_tags: int):
        super().__init__()
        transformers = transformers_module()
        hf_config = transformers.BertConfig(**config)
        self.bert = transformers.BertModel(hf_config, add_pooling_layer=False)
        self.pad_id = hf_config.pad_token_id or 0
        dropout = hf_config.classifier_dropout
        self.drop = nn.Dropout(hf_config.hidden_dropout_prob if dropout is None else dropout)
        self.head = nn.Linear(hf_config.hidden_size, num_tags)
        self.crf = None  # each word's tag on its own (SequenceScoring's softmax path)

    def forward(self, pieces: torch.Tensor, lengths: torch.Tensor, first: torch.Tensor,
                tags: torch.Tensor | None = None) -> torch.Tensor:
        emissions = self.emissions(pieces, lengths, first)
        return emissions if tags is None else self.loss(emissions, tags, lengths)

    def emissions(self, pieces: torch.Tensor, lengths: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        keep = (pieces != self.pad_id).long()
        states = self.bert(input_ids=pieces, attention_mask=keep).last_hidden_state  # (N, P, D)
        words = states.gather(1, first.unsqueeze(-1).expand(-1, -1, states.shape[-1]))  # (N, L, D)
        return self.head(self.drop(words))


# built from a folder's config (--model bert --pretrained DIR): `folder` marks it, as in the classifier registry
@TAGGERS.register("bert", folder=True)
def bert(*, config: dict, num_tags: int):
    return HFBertTagger(config, num_tags)
