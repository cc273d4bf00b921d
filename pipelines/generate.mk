# Generative models on the handwritten digits (sample_data/digits, 8x8 upsampled to SIZE): train a digits
# classifier (the judge), a VAE, a DCGAN, a conditional GAN and a DDPM; draw 100 samples of each, score them
# against the real test digits in the classifier's feature space, and print a comparison table, with the
# floor (one half of the real test digits against the other) and DDIM 50 steps against DDPM's 1,000.
#   make -f pipelines/generate.mk DLTOOL=.venv/bin/dltool [DEVICE=cuda] [OUT=runs/generate]
# TIME: a prefix that times each training, e.g. TIME="/usr/bin/time -a -o runs/generate/times.txt -f '%C %U+%S cpu-s %e s'"
DLTOOL ?= dltool
PYTHON ?= python3
DATA   ?= sample_data/digits
DEVICE ?= auto
OUT    ?= runs/generate
SEED   ?= 0
SIZE   ?= 16
N      ?= 100
TIME   ?=
TRAIN   = --img-size $(SIZE) --device $(DEVICE) --seed $(SEED) --force -q --format json
SAMPLE  = --device $(DEVICE) --seed $(SEED) -q --format json
SCORE   = --classifier $(OUT)/classifier/model.pt --device $(DEVICE) -q --format json

GENERATORS = vae dcgan ddpm ddim
.PHONY: all clean
all: $(OUT)/table.txt
	@cat $<

$(OUT)/classifier/model.pt:
	$(DLTOOL) vision classify train $(DATA)/train --img-size $(SIZE) --epochs 15 --device $(DEVICE) --seed $(SEED) \
	  --out $(OUT)/classifier --force -q --format json > /dev/null

$(OUT)/vae/model.pt:
	$(TIME) $(DLTOOL) generate vae train $(DATA)/train --out $(OUT)/vae $(TRAIN) > /dev/null
$(OUT)/dcgan/model.pt:
	$(TIME) $(DLTOOL) generate gan train $(DATA)/train --kind dcgan --out $(OUT)/dcgan $(TRAIN) > /dev/null
$(OUT)/cgan/model.pt:
	$(TIME) $(DLTOOL) generate gan train $(DATA)/train --kind cgan --out $(OUT)/cgan $(TRAIN) > /dev/null
$(OUT)/diffusion/model.pt:
	$(TIME) $(DLTOOL) generate diffusion train $(DATA)/train --out $(OUT)/diffusion $(TRAIN) > /dev/null

# samples: a folder of N PNGs and a grid each; the sampling record (with its time) beside them
$(OUT)/samples/vae.json: $(OUT)/vae/model.pt
	$(DLTOOL) generate sample $< -n $(N) --out $(OUT)/samples/vae --grid $(OUT)/samples/vae.png --nrow 10 $(SAMPLE) > $@
$(OUT)/samples/dcgan.json: $(OUT)/dcgan/model.pt
	$(DLTOOL) generate sample $< -n $(N) --out $(OUT)/samples/dcgan --grid $(OUT)/samples/dcgan.png --nrow 10 $(SAMPLE) > $@
$(OUT)/samples/ddpm.json: $(OUT)/diffusion/model.pt
	$(DLTOOL) generate sample $< -n $(N) --sampler ddpm --out $(OUT)/samples/ddpm --grid $(OUT)/samples/ddpm.png --nrow 10 $(SAMPLE) > $@
$(OUT)/samples/ddim.json: $(OUT)/diffusion/model.pt
	$(DLTOOL) generate sample $< -n $(N) --sampler ddim --steps 50 --out $(OUT)/samples/ddim --grid $(OUT)/samples/ddim.png --nrow 10 $(SAMPLE) > $@
# cgan: N/10 samples of each class, in class folders, so score reports how often each is recognised
$(OUT)/samples/cgan.json: $(OUT)/cgan/model.pt
	for c in 0 1 2 3 4 5 6 7 8 9; do \
	  $(DLTOOL) generate sample $< -n $$(($(N) / 10)) --class $$c --out $(OUT)/samples/cgan/$$c $(SAMPLE) > /dev/null || exit 1; done
	$(DLTOOL) generate sample $< -n $(N) --grid $(OUT)/samples/cgan.png --nrow 10 $(SAMPLE) > $@

# the floor: every other real test digit against the rest
$(OUT)/real-halves/.done:
	rm -rf $(OUT)/real-halves && mkdir -p $(OUT)/real-halves/a $(OUT)/real-halves/b
	i=0; for f in $$(find $(DATA)/test -name '*.png' | sort); do \
	  if [ $$((i % 2)) -eq 0 ]; then cp $$f $(OUT)/real-halves/a/; else cp $$f $(OUT)/real-halves/b/; fi; i=$$((i + 1)); done
	touch $@

$(OUT)/score-floor.json: $(OUT)/real-halves/.done $(OUT)/classifier/model.pt
	$(DLTOOL) generate score $(OUT)/real-halves/a $(OUT)/real-halves/b $(SCORE) > $@
$(OUT)/score-%.json: $(OUT)/samples/%.json $(OUT)/classifier/model.pt
	$(DLTOOL) generate score $(OUT)/samples/$* $(DATA)/test $(SCORE) > $@

$(OUT)/table.txt: $(OUT)/score-floor.json $(OUT)/score-cgan.json $(foreach g,$(GENERATORS),$(OUT)/score-$(g).json)
	$(PYTHON) -c "import json, sys; \
	print(f\"{'samples':8} {'FD':>8} {'conf':>6} {'classes':>7} {'prec':>5} {'recall':>6} {'cls-acc':>7} {'min-cls':>7} {'sample s':>8}\"); \
	[print(f\"{n:8} {s['fd']:8.3f} {s['mean_confidence']:6.3f} {s['classes_covered']:7d} {s['precision']:5.2f} {s['recall']:6.2f}\" \
	       f\" {s.get('class_accuracy', float('nan')):7.3f} {min(s.get('per_class_accuracy', {'': float('nan')}).values()):7.3f}\" \
	       f\" {t:8.2f}\") \
	 for n in sys.argv[2:] for s in [json.load(open(f'{sys.argv[1]}/score-{n}.json'))] \
	 for t in [json.load(open(f'{sys.argv[1]}/samples/{n}.json'))['sample_time_s'] if n != 'floor' else float('nan')]]" \
	  $(OUT) floor $(GENERATORS) cgan > $@.tmp
	mv $@.tmp $@

clean:
	rm -rf $(OUT)
