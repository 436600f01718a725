# Two entry points (README): `make demo` and `make test`. Both set up .venv first;
# re-running is fast when nothing changed (stamp files).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
MSGS   := $(wildcard msg/*.msg)

# ROS 2 on this machine: loopback-only discovery and the large-image Fast DDS profile.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_profile.xml
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp

.PHONY: setup demo test bench clean-venv
setup: $(VENV)/.stamp-prefix

$(VENV)/.stamp-deps: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.stamp-pkg: setup.py meco_core/__init__.py meco_ros/__init__.py $(VENV)/.stamp-deps
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.stamp-prefix: $(VENV)/.stamp-pkg $(MSGS) package.xml tools/build_msgs.sh tools/install_ament_prefix.sh
	bash tools/build_msgs.sh $(VENV)
	bash tools/install_ament_prefix.sh $(VENV)
	touch $@

demo: setup
	$(VENV)/bin/meco bench --models meco,mlore,mlore_reparam,taskexpert --backbone vit_small_patch16_224 --size 384x512

bench: setup
	$(VENV)/bin/meco bench --models meco,mlore,mlore_reparam,taskexpert --backbone vit_small_patch16_224 --size 384x512 \
	  --json out/bench.json
	$(VENV)/bin/meco bench --models meco --backbone vit_small_patch16_224 --size 384x512 \
	  --experts 5,10,15,20 --topk 3,6,9,12 --json out/bench_ablation.json

test: setup
	$(PY) -m pytest -q test

clean-venv:
	rm -rf $(VENV)
