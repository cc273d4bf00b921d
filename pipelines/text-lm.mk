# Language models: names (one a line, --mode lines) and gensim's news corpus (--mode stream), each
# trained as gpt, lstm and bigram counts -> eval -> sample -> score.
#   make -f pipelines/text-lm.mk DLTOOL=.venv/bin/dltool PYTHON=.venv/bin/python [OUT=runs/text-lm] [MINUTES=10]
# names: sample_data/text/names (a fixed 90/10 split of makemore's names.txt); news: lee_background.cor,
# shipped with gensim. Every target is a file written atomically (or moved into place when complete).
DLTOOL  ?= dltool
PYTHON  ?= python
OUT     ?= runs/text-lm
SEED    ?= 0
MINUTES ?= 10
NAMES   ?= sample_data/text/names
GENSIM  := $(shell $(PYTHON) -c "from gensim.test.utils import datapath; print(datapath(''))")
LEE     := $(GENSIM)/lee_background.cor

.PHONY: all clean
all: $(OUT)/names-gpt-eval.json $(OUT)/names-lstm-eval.json $(OUT)/names-bigram-eval.json \
     $(OUT)/names-lstm-novel.json $(OUT)/names-lstm-score.jsonl \
     $(OUT)/lee-gpt-eval.json $(OUT)/lee-lstm-eval.json $(OUT)/lee-bigram-eval.json \
     $(OUT)/lee-gpt-sample.jsonl $(OUT)/lee-lstm-score.jsonl
	@for m in gpt lstm bigram; do echo "names $$m test: $$(grep -o '"loss": [0-9.e-]*' $(OUT)/names-$$m-eval.json) nats/char"; done
	@echo "names lstm (the default), 200 samples: $$(cat $(OUT)/names-lstm-novel.json)"
	@for m in gpt lstm bigram; do echo "lee $$m validation: $$(grep -o '"bpc": [0-9.e-]*' $(OUT)/lee-$$m-eval.json) bits/char"; done

# -- names: one name a line ----------------------------------------------------------------------------
$(OUT)/names-%/model.pt:
	$(DLTOOL) text lm train $(NAMES)/train.txt --val $(NAMES)/test.txt --model $* --out $(OUT)/names-$* --force \
	  $(if $(filter bigram,$*),,--time-limit $(MINUTES) --seed $(SEED)) -q > /dev/null

$(OUT)/names-%-eval.json: $(OUT)/names-%/model.pt
	$(DLTOOL) text lm eval $< $(NAMES)/test.txt --format json > $@.tmp && mv $@.tmp $@

$(OUT)/names-lstm-sample.jsonl: $(OUT)/names-lstm/model.pt
	$(DLTOOL) text lm sample $< -n 200 --seed $(SEED) -o $@

# the share of 200 sampled names that are not in the training file (the bar: at least 0.8)
$(OUT)/names-lstm-novel.json: $(OUT)/names-lstm-sample.jsonl
	$(PYTHON) -c "import json,sys; seen=set(open('$(NAMES)/train.txt').read().split()); \
	  rows=[json.loads(l) for l in open('$<')]; \
	  print(json.dumps({'samples': len(rows), 'novel': sum(r['text'] not in seen for r in rows) / len(rows)}))" > $@.tmp && mv $@.tmp $@

# the test names ranked from the most to the least likely under the model
$(OUT)/names-lstm-score.jsonl: $(OUT)/names-lstm/model.pt
	$(DLTOOL) text lm score $< $(NAMES)/test.txt -o $@

# -- news: the corpus as one text ----------------------------------------------------------------------
$(OUT)/lee-%/model.pt:
	$(DLTOOL) text lm train $(LEE) --mode stream --model $* --out $(OUT)/lee-$* --force \
	  $(if $(filter bigram,$*),,--time-limit $(MINUTES) --seed $(SEED)) -q > /dev/null

# validation: the tail of the corpus the run held out (--val-split 0.1), as a file
$(OUT)/lee-val.txt:
	@mkdir -p $(OUT)
	$(PYTHON) -c "import itertools; lines=[t for t in open('$(LEE)').read().splitlines() if t.strip()]; \
	  starts=[0, *itertools.accumulate(len(t) + 1 for t in lines)]; cut=starts[-1] - round(starts[-1] * 0.1); \
	  open('$@.tmp', 'w').write(''.join(t + '\n' for t, s in zip(lines, starts) if s >= cut))" && mv $@.tmp $@

$(OUT)/lee-%-eval.json: $(OUT)/lee-%/model.pt $(OUT)/lee-val.txt
	$(DLTOOL) text lm eval $< $(OUT)/lee-val.txt --format json > $@.tmp && mv $@.tmp $@

$(OUT)/lee-gpt-sample.jsonl: $(OUT)/lee-gpt/model.pt
	$(DLTOOL) text lm sample $< --prompt "The government" -n 3 --max-tokens 300 --temperature 0.8 --seed $(SEED) -o $@

$(OUT)/lee-lstm-score.jsonl: $(OUT)/lee-lstm/model.pt $(OUT)/lee-val.txt
	$(DLTOOL) text lm score $< $(OUT)/lee-val.txt -o $@

clean:
	rm -rf $(OUT)
