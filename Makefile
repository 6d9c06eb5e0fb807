# The two commands a newcomer runs: `make bench` (the main job) and `make test`.
# Both build the virtual environment on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HYBRIDNLP_DATA ?= $(abspath ../shared/corpora)
export HYBRIDNLP_DATA
# Two cores: one thread per numeric library keeps parallel work from oversubscribing them.
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1

STAMP := $(VENV)/.installed

.PHONY: install test bench bench-full clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[transformers,bench,dev]"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

# The embedded corpora (written for this project, in corpora/): about ten minutes on 2 cores.
# The transformer gets a small CPU budget here (BENCH_STEPS gradient steps); hybrid reuses
# the fast and accurate pipelines of the same run and fits the fusion on dev; cascade reuses
# hybrid and chooses on dev which docs go past the classical part; zeroshot trains nothing
# (text classification only: the NER corpus lists it as skipped).
EMBEDDED ?= corpora/support_intents,corpora/field_notes_ner
BENCH_SYSTEMS ?= fast,accurate,hybrid,cascade,zeroshot
BENCH_STEPS ?= 150
bench: install
	$(BIN)/hybridnlp bench --corpus $(EMBEDDED) --systems $(BENCH_SYSTEMS) \
		--output bench-out/embedded --training.max_steps $(BENCH_STEPS)

# The public corpora under $$HYBRIDNLP_DATA; produces the README's results section.
FULL ?= banking77,trec6,sst2,sms_spam,conll2003,wnut17
FULL_SYSTEMS ?= fast
bench-full: install
	$(BIN)/hybridnlp bench --corpus $(FULL) --systems $(FULL_SYSTEMS) --output bench-out/full

clean:
	rm -rf $(VENV) bench-out *.egg-info
