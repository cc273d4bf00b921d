# Time series (sample_data/series, statsmodels' real series): the classical baselines and their forecast,
# a network (nbeats: the best one on co2) trained on all but the last year, its backtest beside the
# baselines, a forecast of the next year with a picture; and one global model over the four quarterly
# US macro series.
#   make -f pipelines/series.mk DLTOOL=.venv/bin/dltool [DEVICE=cuda] [OUT=runs/series]
# Every target is a file written atomically, so make re-runs only what is out of date.
DLTOOL ?= dltool
DATA   ?= sample_data/series
DEVICE ?= auto
OUT    ?= runs/series
SEED   ?= 0
MODEL  ?= nbeats
CO2    := $(DATA)/co2.csv --time month --target co2

.PHONY: all clean
all: $(OUT)/baselines.json $(OUT)/eval.json $(OUT)/forecast.csv $(OUT)/macro-forecast.csv
	@echo "baselines: $(OUT)/baselines.json (their next 12 months: $(OUT)/baseline-forecast.csv); network beside them: $(OUT)/eval.json"
	@echo "next 12 months: $(OUT)/forecast.csv, picture $(OUT)/forecast.png"

# the backtest of the classical methods, and the next 12 months by the one that scored best
$(OUT)/baselines.json:
	@mkdir -p $(OUT)
	$(DLTOOL) series baseline $(CO2) --horizon 12 --folds 3 -o $(OUT)/baseline-forecast.csv --format json -q > $@.tmp \
	  && mv $@.tmp $@

$(OUT)/co2/model.pt:
	$(DLTOOL) series forecast train $(CO2) --horizon 12 --holdout 12 --model $(MODEL) --quantiles 0.1,0.9 \
	  --device $(DEVICE) --seed $(SEED) --out $(OUT)/co2 --force -q

# backtest: the last 12 months, which training never saw, scored beside the baselines on the same histories
$(OUT)/eval.json: $(OUT)/co2/model.pt
	$(DLTOOL) series forecast eval $< $(DATA)/co2.csv --device $(DEVICE) --format json > $@.tmp && mv $@.tmp $@

$(OUT)/forecast.csv: $(OUT)/co2/model.pt
	$(DLTOOL) series forecast predict $< $(DATA)/co2.csv --plot $(OUT)/forecast.png --device $(DEVICE) -q -o $@

# many series in one table: one global model, a forecast per series
$(OUT)/macro/model.pt:
	$(DLTOOL) series forecast train $(DATA)/macro.csv --id series --time quarter --target value --horizon 8 \
	  --device $(DEVICE) --seed $(SEED) --out $(OUT)/macro --force -q

$(OUT)/macro-forecast.csv: $(OUT)/macro/model.pt
	$(DLTOOL) series forecast predict $< $(DATA)/macro.csv --plot $(OUT)/macro-forecast.png --device $(DEVICE) -q -o $@

clean:
	rm -rf $(OUT)
