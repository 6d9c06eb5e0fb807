"""Checks shared by the ensembler tests (span_fusion, cats_fusion, cascade)."""

import json

import pytest
import spacy


def check_saved_cfg_errors(nlp, component: str, tmp_path, spoil) -> None:
    """Save ``nlp``; a cfg that ``spoil`` (cfg dict -> cfg dict) made nonsense, one that is
    not JSON, and a missing one must each fail ``spacy.load`` with E103, E103 and E102."""
    nlp.to_disk(tmp_path / "p")
    cfg_file = tmp_path / "p" / component / "cfg"
    cfg_file.write_text(json.dumps(spoil(json.loads(cfg_file.read_text()))))
    with pytest.raises(ValueError, match=r"\[E103\]"):
        spacy.load(tmp_path / "p")
    cfg_file.write_text("{not json")
    with pytest.raises(ValueError, match=r"\[E103\]"):
        spacy.load(tmp_path / "p")
    cfg_file.unlink()
    with pytest.raises(OSError, match=r"\[E102\]"):
        spacy.load(tmp_path / "p")
