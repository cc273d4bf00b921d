# Sequence to sequence: grapheme-to-phoneme on the CMU dictionary sample, a Transformer and an LSTM with and
# without attention -> eval (greedy and beam 5) -> predict (n-best) -> attention plots.
#   make -f pipelines/text-seq2seq.mk DLTOOL=.venv/bin/dltool [OUT=runs/text-seq2seq] [MINUTES=10]
# Data: sample_data/text/g2p (6,000 training words of sample_data/make_g2p.py's split; the full-dictionary
# bar is benchmarks/g2p.py). Every target is a file written atomically (or moved into place when complete).
DLTOOL  ?= dltool
OUT     ?= runs/text-seq2seq
SEED    ?= 0
MINUTES ?= 10
G2P     ?= sample_data/text/g2p
WORDS   ?= photosynthesis\nqueue\nknight\ntokenizer\ncolonel

.PHONY: all clean
all: $(OUT)/transformer-eval1.json $(OUT)/transformer-eval5.json $(OUT)/lstm-none-eval5.json \
     $(OUT)/lstm-luong-eval5.json $(OUT)/transformer-words.jsonl $(OUT)/attention/0001.png
	@for f in transformer-eval1 transformer-eval5 lstm-none-eval5 lstm-luong-eval5; do \
	  echo "$$f: $$(grep -o '"wer": [0-9.e-]*' $(OUT)/$$f.json), $$(grep -o '"ter": [0-9.e-]*' $(OUT)/$$f.json)"; done

$(OUT)/transformer/model.pt:
	$(DLTOOL) text seq2seq train $(G2P)/train.tsv --target-vocab word --model transformer --time-limit $(MINUTES) \
	  --seed $(SEED) --out $(OUT)/transformer --force -q > /dev/null

# the course's baseline (the final state only) against Luong attention (the default model), on the same budget
$(OUT)/lstm-%/model.pt:
	$(DLTOOL) text seq2seq train $(G2P)/train.tsv --target-vocab word --model lstm --attention $* \
	  --time-limit $(MINUTES) --seed $(SEED) --out $(OUT)/lstm-$* --force -q > /dev/null

$(OUT)/transformer-eval%.json: $(OUT)/transformer/model.pt
	$(DLTOOL) text seq2seq eval $< $(G2P)/test.tsv --beam $* --format json > $@.tmp && mv $@.tmp $@

$(OUT)/lstm-%-eval5.json: $(OUT)/lstm-%/model.pt
	$(DLTOOL) text seq2seq eval $< $(G2P)/test.tsv --beam 5 --format json > $@.tmp && mv $@.tmp $@

# words of no split, with the 3 best pronunciations and their log-probabilities
$(OUT)/transformer-words.jsonl: $(OUT)/transformer/model.pt
	printf '$(WORDS)\n' | $(DLTOOL) text seq2seq predict $< --nbest 3 -o $@

# one PNG a word: its letters across, the phonemes down (the Transformer's last layer, heads averaged)
$(OUT)/attention/0001.png: $(OUT)/transformer/model.pt
	rm -rf $(OUT)/attention.tmp
	printf '$(WORDS)\n' | $(DLTOOL) text seq2seq predict $< --plot-attention $(OUT)/attention.tmp -o /dev/null
	rm -rf $(OUT)/attention && mv $(OUT)/attention.tmp $(OUT)/attention

clean:
	rm -rf $(OUT)
