# The tutorial's experiment as file targets: fetch -> split -> pack -> train -> eval.
# make -f pipelines/pets.mk [VAR=value ...]; re-running redoes only what a changed file or
# knob invalidates, and `make -q -f pipelines/pets.mk` after a complete run has nothing to do.

# Knobs (each one is a cache key for the steps it affects, kept in WORK/*.args).
MIRROR    ?=
BREEDS    ?= samoyed,shiba_inu
TEST      ?= 0.15
SEED      ?= 1
SIZE      ?= 224
EPOCHS    ?= 400
BATCH     ?= 10
LR        ?= 1e-5
KEEP_CONV ?= 0.2
KEEP_FC   ?= 0.5
THREADS   ?= $(shell nproc)
MODEL     ?=
INIT      ?= seed
TRAIN_OPTS ?=
# cnn-train --augment SPEC (e.g. flip,shift:16,scale:0.5-1,rotate:10,color:0.3); empty: none
AUGMENT   ?=
# Where things go.
DATA ?= data
WORK ?= pets
RUNS ?= runs/pets
# Tools: the tree's own bin/ when run from a checkout, else whatever is on PATH.
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BIN ?= $(if $(wildcard $(TOP)/bin/cnn-train),$(TOP)/bin/,)
# A prerequisite of the fetch step (the demo's mirror); empty for the real site.
FETCH_DEPS ?=

.PHONY: all fetch split pack train eval augment
.DELETE_ON_ERROR:

all: $(WORK)/eval.txt figures $(if $(AUGMENT),$(WORK)/augment.png)

# A step's knobs, written to WORK/NAME.args only when they change, so a changed knob makes
# just the steps that read it out of date (and make -q stays quiet when nothing changed).
args = $(shell mkdir -p $(WORK) && f='$(WORK)/$(1).args' && printf '%s\n' '$(2)' > "$$f.new" && \
	{ cmp -s "$$f.new" "$$f" && rm -f "$$f.new" || mv -f "$$f.new" "$$f"; } && echo "$$f")
FETCH_ARGS := $(call args,fetch,$(DATA) $(MIRROR))
SPLIT_ARGS := $(call args,split,$(BREEDS) $(TEST) $(SEED))
PACK_ARGS  := $(call args,pack,$(SIZE))
TRAIN_ARGS := $(call args,train,$(EPOCHS) $(BATCH) $(LR) $(KEEP_CONV) $(KEEP_FC) $(SEED) $(THREADS) $(MODEL) $(INIT) $(TRAIN_OPTS)$(if $(AUGMENT), --augment $(AUGMENT)))

fetch: $(WORK)/fetched
$(WORK)/fetched: $(FETCH_ARGS) $(FETCH_DEPS)
	$(BIN)pet-fetch -o $(DATA) $(if $(MIRROR),--mirror $(MIRROR))
	touch $@

split: $(WORK)/lists/train.tsv
$(WORK)/lists/train.tsv $(WORK)/lists/test.tsv &: $(WORK)/fetched $(SPLIT_ARGS)
	$(BIN)pet-split $(DATA) --breeds $(BREEDS) --test $(TEST) --seed $(SEED) -o $(WORK)/lists

pack: $(WORK)/train.npy $(WORK)/test.npy
$(WORK)/%.npy: $(WORK)/lists/%.tsv $(PACK_ARGS)
	$(BIN)pet-pack -q --size $(SIZE) --list $< -o $@

# Training starts afresh, so the old TensorBoard runs go with the old model.
train: $(WORK)/model.npz
$(WORK)/model.npz $(WORK)/snapshots.npy &: $(WORK)/train.npy $(WORK)/test.npy $(TRAIN_ARGS)
	rm -rf $(RUNS)
	$(BIN)cnn-train --train $(WORK)/train.npy --test $(WORK)/test.npy \
	    --epochs $(EPOCHS) --batch $(BATCH) --lr $(LR) --keep-conv $(KEEP_CONV) \
	    --keep-fc $(KEEP_FC) --seed $(SEED) --threads $(THREADS) --init $(INIT) \
	    $(if $(MODEL),--model '$(MODEL)') $(if $(AUGMENT),--augment '$(AUGMENT)') $(TRAIN_OPTS) \
	    --logdir $(RUNS) --snapshots $(WORK)/snapshots.npy -o $(WORK)/model.npz \
	    > $(WORK)/metrics.tsv

# What training sees with AUGMENT: three training images of each class, a row each, in
# its first eight epochs' draws (cnn-apply --augment's copy c is epoch c's).
augment: $(WORK)/augment.png
$(WORK)/augment.png: $(WORK)/lists/train.tsv $(TRAIN_ARGS)
	awk -F'\t' '/^#/ || n[$$2]++ < 3' $< | $(BIN)pet-pack -q --size $(SIZE) | \
	    $(BIN)cnn-apply -q --augment '$(or $(AUGMENT),none)' --copies 8 --seed $(SEED) | \
	    $(BIN)tensor-png --cols 8 -o $@

eval: $(WORK)/eval.txt
$(WORK)/eval.txt: $(WORK)/model.npz $(WORK)/test.npy
	$(BIN)cnn-eval -m $(WORK)/model.npz --predictions $(WORK)/predictions.tsv \
	    $(WORK)/test.npy > $@
	cat $@

# The tutorial's figures (filters, pooling, padding, feature maps, evolution GIFs).
FIGS ?= $(WORK)/figures
FIG_GIFS ?= $(FIGS)/evolution-conv1_2.gif $(FIGS)/evolution-conv2_2.gif
include $(dir $(lastword $(MAKEFILE_LIST)))figures.mk
