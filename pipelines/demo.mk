# The offline demo: pet-synth makes a mirror of the dataset, pet-fetch fetches it over
# file:// exactly as it fetches the real site, and pets.mk's pipeline runs at 64x64.
# make -f pipelines/demo.mk [DEMO=dir] [EPOCHS=n] ...

# The tutorial's network at 64x64; He init, lr 1e-4 and keep-conv 0.8 learn it in a few
# epochs (the seed's init, lr 1e-5 and keep-conv 0.2 need hundreds: see pets.mk).
DEMO      ?= demo
PER_BREED ?= 150
SIZE      ?= 64
EPOCHS    ?= 10
LR        ?= 1e-4
BATCH     ?= 10
INIT      ?= he
KEEP_CONV ?= 0.8
MIRROR_DIR := $(DEMO)/mirror
MIRROR    := file://$(abspath $(MIRROR_DIR))
DATA      := $(DEMO)/data
WORK      := $(DEMO)
RUNS      := $(DEMO)/runs
FETCH_DEPS = $(MIRROR_DIR)/SHA256SUMS

.DEFAULT_GOAL := demo
include $(dir $(lastword $(MAKEFILE_LIST)))pets.mk

$(MIRROR_DIR)/SHA256SUMS:
	$(BIN)pet-synth -q -o $(MIRROR_DIR) --breeds $(BREEDS) --per-breed $(PER_BREED) --seed $(SEED)

.PHONY: demo
demo: $(WORK)/eval.txt figures
	@echo
	@echo "demo: $$(grep -i '^accuracy' $(WORK)/eval.txt | head -n 1)"
	@echo "demo: TensorBoard logs in $(RUNS): tensorboard --logdir $(RUNS)"
	@echo "demo: figures in $(FIGS):"
	@cd $(FIGS) && ls *.png *.gif *.txt | sed 's/^/  /'
