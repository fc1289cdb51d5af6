# petcnn: one build for every program. `make`, `make check`, `make asan`, `make fuzz`,
# `make install PREFIX=... DESTDIR=...`, `make clean`. Sources are found by wildcard, so a
# new lib/<domain>/*.c, tools/*.c or tests/unit/*.c needs no edit here.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man/man1
CC         ?= cc
PKG_CONFIG ?= pkg-config
BATS       ?= bats
PYTHON     ?= /usr/bin/python3
CFLAGS     ?= -O2 -g
LDFLAGS    ?=
BUILD      ?= build
BIN        ?= bin

PKGS      := libarchive libcurl libjpeg openblas libpng zlib libcrypto libprotobuf-c libisal
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   = $(shell $(PKG_CONFIG) --libs $(PKGS))
GIF_LIBS  ?= -lgif

# -Werror only where we control the compiler (make check, asan, CI): a packager's newer
# compiler may warn about something new, and that should not break their build.
WERROR    ?=
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra $(WERROR) \
             -pthread -Ilib -I$(GEN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LIBS   = $(PKG_LIBS) $(GIF_LIBS) -pthread -lm

# Open MPI (Debian's libopenmpi-dev) for data parallelism under mpirun: only lib/nn/dist.c
# includes mpi.h and only the programs mpirun runs link libmpi (the others never load it).
# Linked, not dlopen'ed: without mpirun nothing calls it (dist.h), and loading it changes
# no output byte; it costs cnn-train's start-up a few ms (README, "Training on several
# machines").
MPI_PKG    ?= ompi-c
MPI_CFLAGS  = $(shell $(PKG_CONFIG) --cflags $(MPI_PKG))
MPI_LIBS    = $(shell $(PKG_CONFIG) --libs $(MPI_PKG))
MPI_TOOLS  := cnn-train cnn-eval

# ONNX is read with protobuf-c over the onnx.proto Debian's libonnx-dev ships, its C
# generated here at build time (never committed: it follows the installed proto).
PROTOC_C   ?= protoc-c
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
GEN        := $(BUILD)/gen
GEN_OBJ    := $(GEN)/onnx.pb-c.o

LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard lib/*/*.c)) $(GEN_OBJ)
TOOLS    := $(sort $(notdir $(basename $(wildcard tools/*.c))))
UNITS    := $(sort $(notdir $(basename $(wildcard tests/unit/test_*.c))))
PROGS    := $(addprefix $(BIN)/,$(TOOLS))
UNITBINS := $(addprefix $(BUILD)/tests/,$(UNITS))
LIBA     := $(BUILD)/libpetcnn.a

.PHONY: all check unit unitbins bats asan mutate fuzz bench demo install uninstall clean man setup
.DELETE_ON_ERROR:
.SECONDARY:

all: $(PROGS)

# The flags every object was built with, rewritten (at parse time, so `make -n` sees it
# too) only when they change: `make check` (-Werror) after a plain `make` rebuilds, and
# nothing else does.
FLAGS := $(BUILD)/cflags
FLAGS_NOW = $(CC) $(ALL_CFLAGS) $(LDFLAGS)
$(shell mkdir -p $(BUILD) && { echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS) || echo '$(FLAGS_NOW)' > $(FLAGS); })

$(BUILD)/%.o: %.c $(FLAGS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# One rule makes both files (a pattern rule with two targets is run once for both).
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: $(dir $(ONNX_PROTO))%.proto
	@mkdir -p $(@D)
	$(PROTOC_C) -I$(dir $(ONNX_PROTO)) --c_out=$(GEN) $<

# Generated code is compiled without $(WERROR): it is protoc-c's, not ours, and a newer
# protoc-c may warn where 1.4 does not (1.4.1's output is clean under -Wall -Wextra).
$(GEN_OBJ): $(GEN)/onnx.pb-c.c $(FLAGS)
	$(CC) $(filter-out $(WERROR),$(ALL_CFLAGS)) -MMD -MP -c $< -o $@

# What includes the generated header needs it before its first compile (afterwards the
# .d files track it): lib/onnx and its unit tests and fuzzers.
$(patsubst %.c,$(BUILD)/%.o,$(wildcard lib/onnx/*.c tests/unit/test_onnx*.c tests/fuzz/fuzz_onnx*.c)): \
    | $(GEN)/onnx.pb-c.h

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN)/%: $(BUILD)/tools/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIBA) $(ALL_LIBS) -o $@

$(BUILD)/lib/nn/dist.o: ALL_CFLAGS += $(MPI_CFLAGS)
$(addprefix $(BIN)/,$(MPI_TOOLS)): ALL_LIBS += $(MPI_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIBA) $(ALL_LIBS) -o $@

-include $(LIB_OBJ:.o=.d) $(TOOLS:%=$(BUILD)/tools/%.d) $(UNITS:%=$(BUILD)/tests/unit/%.d)

# The README's test command: C unit tests, then every program's bats file against $(BIN).
check:
	@./scripts/setup
	$(MAKE) WERROR=-Werror unit bats

unitbins: $(UNITBINS)

unit: $(UNITBINS)
	@set -e; for t in $(UNITBINS); do echo "== $$t"; $$t; done

# tests/formats.bats runs the unit binaries too (numpy checks the files they write).
bats: all $(UNITBINS)
	@./scripts/need bats
	PETCNN_BIN=$(abspath $(BIN)) PETCNN_BUILD=$(abspath $(BUILD)) PETCNN_PYTHON=$(PYTHON) $(BATS) tests/*.bats

# The same tests on binaries built with AddressSanitizer and UBSan (separate build tree).
SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) BUILD=build/asan BIN=build/asan/bin CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" check

# Deliberate bugs (tests/mutations.txt), each alone; the tests named for each must fail.
mutate:
	@./scripts/setup
	$(PYTHON) tests/mutate.py

# libFuzzer, one harness per parser of outside input: tests/fuzz/fuzz_NAME.c, seeds in
# tests/fuzz/seeds/NAME/ (a new parser needs only those two). The library is rebuilt with
# the fuzzer's instrumentation in its own tree; each harness runs FUZZ_SECONDS, in turn.
# `make fuzz FUZZ_SECONDS=600`, or one: `make fuzz FUZZERS=npy`.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_MAX_LEN ?= 65536
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZERS      ?= $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
fuzz:
	$(MAKE) CC=$(FUZZ_CC) BUILD=build/fuzz BIN=build/fuzz/bin WERROR= \
	    CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)" LDFLAGS="-fsanitize=fuzzer $(FUZZ_SAN)" \
	    $(FUZZERS:%=build/fuzz/fuzzers/fuzz_%)
	@set -e; for f in $(FUZZERS); do \
	    mkdir -p build/fuzz/corpus/$$f; echo "== fuzz_$$f ($(FUZZ_SECONDS) s)"; \
	    build/fuzz/fuzzers/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
	        -artifact_prefix=build/fuzz/ build/fuzz/corpus/$$f $$(ls -d tests/fuzz/seeds/$$f 2>/dev/null); done

$(BUILD)/fuzzers/%: $(BUILD)/tests/fuzz/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIBA) $(ALL_LIBS) -o $@

bench: all
	./bench/run

demo:
	./scripts/setup
	$(MAKE) all
	$(MAKE) -f pipelines/demo.mk

# A man page per program, generated from its --help and --version.
MANS := $(TOOLS:%=$(BUILD)/man/%.1)
man: $(MANS)
$(BUILD)/man/%.1: $(BIN)/%
	@mkdir -p $(@D)
	@./scripts/need help2man
	help2man -N --no-discard-stderr -n "$$($< --help | sed -n '2p')" $< > $@

install: all man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	install -m 644 $(MANS) $(DESTDIR)$(MANDIR)

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(TOOLS:%=$(DESTDIR)$(MANDIR)/%.1)

clean:
	rm -rf $(BUILD) $(BIN)
