# Spoken digits (sample_data/audio, espeak-ng voices; the test voices are never heard in training):
# info, spectrogram pictures, an MFCC table -> reduce pca -> cluster kmeans, classify train/eval/predict.
#   make -f pipelines/audio.mk DLTOOL=.venv/bin/dltool [DEVICE=cuda] [OUT=runs/audio]
# Every target is a file written atomically, so make re-runs only what is out of date.
DLTOOL ?= dltool
DATA   ?= sample_data/audio
DEVICE ?= auto
OUT    ?= runs/audio
SEED   ?= 0
SR     ?= 8000
EPOCHS ?= 30

.PHONY: all clean
all: $(OUT)/info.csv $(OUT)/pictures/.done $(OUT)/mfcc-kmeans.jsonl $(OUT)/eval.json $(OUT)/predictions.jsonl
	@echo "files: $$(tail -n +2 $(OUT)/info.csv | wc -l) clips; pictures in $(OUT)/pictures"
	@echo "MFCC -> PCA 2 -> k-means 10: $(OUT)/mfcc-kmeans.jsonl"
	@echo "test voices (never heard in training): $$(grep -o '"accuracy": [0-9.]*' $(OUT)/eval.json)"

$(OUT)/info.csv:
	@mkdir -p $(OUT)
	$(DLTOOL) audio info $(DATA) --format csv -o $@

# one picture each of a mel spectrogram and the MFCCs of every test clip of the digit 7
$(OUT)/pictures/.done:
	$(DLTOOL) audio spectrogram $(DATA)/test/7 --kind mel --sr $(SR) --n-fft 256 --n-mels 40 --device $(DEVICE) \
	  --plot $(OUT)/pictures/mel -q
	$(DLTOOL) audio mfcc $(DATA)/test/7 --sr $(SR) --n-fft 256 --n-mels 40 --device $(DEVICE) --plot $(OUT)/pictures/mfcc -q
	touch $@

$(OUT)/mfcc.jsonl:
	@mkdir -p $(OUT)
	$(DLTOOL) audio mfcc $(DATA)/train --sr $(SR) --n-fft 256 --n-mels 40 --pool meanstd --device $(DEVICE) -q -o $@

$(OUT)/mfcc-kmeans.jsonl: $(OUT)/mfcc.jsonl
	$(DLTOOL) reduce pca $< -n 2 --standardize -q | $(DLTOOL) cluster kmeans - -k 10 --seed $(SEED) -q -o $@

$(OUT)/model/model.pt:
	@mkdir -p $(OUT)
	$(DLTOOL) audio classify train $(DATA)/train --model conv1d --sr $(SR) --n-fft 256 --n-mels 40 --lr 0.003 \
	  --epochs $(EPOCHS) --val-split 0 --augment shift,freqmask,timemask --device $(DEVICE) --seed $(SEED) \
	  --out $(OUT)/model --force -q --format json > $(OUT)/train.json

$(OUT)/eval.json: $(OUT)/model/model.pt
	$(DLTOOL) audio classify eval $< $(DATA)/test --device $(DEVICE) --format json -q > $@.tmp && mv $@.tmp $@

$(OUT)/predictions.jsonl: $(OUT)/model/model.pt
	$(DLTOOL) audio classify predict $< $(DATA)/test --topk 3 --device $(DEVICE) -o $@

clean:
	rm -rf $(OUT)
