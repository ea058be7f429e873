"""encoderlab's Llama-architecture encoder for Hugging Face transformers.

`encoderlab export hf` ships this file in every export whose model must not run as the stock
causal Llama: a model trained or fine-tuned with bidirectional attention (MLM, or any backbone
fine-tuned as an encoder), or a classifier that pools the mean or the first token. The export's
`config.json` has `model_type: "encoderlab"` and an `auto_map` onto the classes below, so that

    AutoModel / AutoModelForMaskedLM / AutoModelForSequenceClassification /
    AutoModelForTokenClassification / AutoModelForQuestionAnswering
        .from_pretrained(PATH, trust_remote_code=True)

give the model as it was trained, with the usual 2D `attention_mask` (1 = token, 0 = padding)
and no hand-built mask; without `trust_remote_code=True` transformers refuses to load it instead
of silently running it causally. The weights keep Llama's names (`model.*`, `lm_head`, `score`,
`qa_outputs`), so the backbone is transformers' own `LlamaModel`: only the attention mask
differs (every position sees every non-padding position when `config.attention` is
`"bidirectional"`), and the heads pool as encoderlab's do (`config.pooling`: `mean` over the
non-padding tokens, `first` or `last` non-padding token).

Supported attention implementations: `eager` and `sdpa` (the mask is a 4D additive tensor).
"""

import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel, LlamaPreTrainedModel
from transformers.modeling_outputs import (
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)


class EncoderlabConfig(LlamaConfig):
    """Llama's configuration, plus the attention the model runs with and the classifier's pooling."""

    model_type = "encoderlab"

    def __init__(self, attention="bidirectional", pooling="mean", **kwargs):
        self.attention = attention
        self.pooling = pooling
        super().__init__(**kwargs)


def padding_mask(attention_mask, input_ids, inputs_embeds):
    """The (B, T) mask of tokens (1) and padding (0); all ones when none is given."""
    if attention_mask is not None:
        return attention_mask
    reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
    return torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)


def bidirectional_mask(attention_mask, dtype):
    """(B, T) 1/0 → (B, 1, T, T) additive: 0 where the key is a token, the dtype's minimum where
    it is padding, for every query (transformers uses a 4D mask as given)."""
    t = attention_mask.shape[-1]
    keys = attention_mask.bool()[:, None, None, :].expand(-1, 1, t, t)
    return torch.zeros(keys.shape, dtype=dtype, device=attention_mask.device).masked_fill(
        ~keys, torch.finfo(dtype).min
    )


def pool(hidden, attention_mask, pooling):
    """(B, T, H) → (B, H) over the non-padding positions, as encoderlab's `heads::pool`."""
    mask = attention_mask.to(hidden.dtype)
    if pooling == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
    positions = torch.arange(mask.shape[1], device=hidden.device)
    tokens = mask > 0.5
    if pooling == "first":
        index = torch.where(tokens, positions, mask.shape[1]).min(1).values
    elif pooling == "last":
        index = torch.where(tokens, positions, -1).max(1).values
    else:
        raise ValueError(f"unknown pooling {pooling!r}: mean, first or last")
    index = index.clamp(0, mask.shape[1] - 1)  # a row without tokens pools position 0
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


class EncoderlabModel(LlamaModel):
    """Llama's backbone with the attention of `config.attention`: `bidirectional` (the default)
    or `causal`."""

    config_class = EncoderlabConfig

    def __init__(self, config):
        super().__init__(config)
        self.bidirectional = getattr(config, "attention", "bidirectional") == "bidirectional"
        for layer in self.layers:
            layer.self_attn.is_causal = not self.bidirectional

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        # an encoder has no cache to fill
        kwargs["use_cache"] = False
        if self.bidirectional and (attention_mask is None or attention_mask.dim() == 2):
            dtype = self.embed_tokens.weight.dtype if inputs_embeds is None else inputs_embeds.dtype
            attention_mask = bidirectional_mask(padding_mask(attention_mask, input_ids, inputs_embeds), dtype)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)


class EncoderlabPreTrainedModel(LlamaPreTrainedModel):
    """What the heads share: the backbone under `model`, and its last hidden states."""

    config_class = EncoderlabConfig

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def last_hidden_state(self, input_ids, attention_mask, inputs_embeds, **kwargs):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                          **kwargs).last_hidden_state


class EncoderlabForMaskedLM(EncoderlabPreTrainedModel):
    """The backbone and its language-model head: logits for every position (MLM)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = EncoderlabModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs):
        hidden = self.last_hidden_state(input_ids, attention_mask, inputs_embeds, **kwargs)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                               ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits)


class EncoderlabForSequenceClassification(EncoderlabPreTrainedModel):
    """Pooled backbone output (`config.pooling`) → `num_labels` logits (`score`, no bias)."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = EncoderlabModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs):
        mask = padding_mask(attention_mask, input_ids, inputs_embeds)
        hidden = self.last_hidden_state(input_ids, mask, inputs_embeds, **kwargs)
        logits = self.score(pool(hidden, mask, getattr(self.config, "pooling", "mean")))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels.reshape(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


class EncoderlabForTokenClassification(EncoderlabPreTrainedModel):
    """Each position → `num_labels` logits (`score`, with bias)."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = EncoderlabModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs):
        hidden = self.last_hidden_state(input_ids, attention_mask, inputs_embeds, **kwargs)
        logits = self.score(hidden)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.num_labels).float(), labels.reshape(-1),
                                               ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits)


class EncoderlabForQuestionAnswering(EncoderlabPreTrainedModel):
    """Each position → start and end logits (`qa_outputs`)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = EncoderlabModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, start_positions=None,
                end_positions=None, **kwargs):
        hidden = self.last_hidden_state(input_ids, attention_mask, inputs_embeds, **kwargs)
        start_logits, end_logits = (x.squeeze(-1).contiguous() for x in self.qa_outputs(hidden).split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            ce = nn.functional.cross_entropy
            loss = (ce(start_logits.float(), start_positions) + ce(end_logits.float(), end_positions)) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)
