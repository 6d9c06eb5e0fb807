"""Tests for hybridnlp.corpora: readers, writers, scheme handling, corpus resolution and the
spaCy reader registration."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.util import load_config_from_str, registry

from hybridnlp.corpora import (CorpusError, CorpusInfo, create_corpus_reader, detect_scheme,
                               iter_conll, read_examples, resolve_corpus, spans_to_tags,
                               tags_to_spans, write_conll, write_jsonl)

# Three sentences with the same entities in each scheme: adjacent same-type entities
# (IOB1's B-), single-token and multi-token entities.
SENTENCES = [
    ["Anna", "Lee", "met", "Bob", "in", "New", "York", "."],
    ["Paris", "Berlin", "and", "Rome", "."],
    ["Nothing", "here"],
]
ENTITIES = [
    [(0, 2, "PER"), (3, 4, "PER"), (5, 7, "LOC")],
    [(0, 1, "LOC"), (1, 2, "LOC"), (3, 4, "LOC")],
    [],
]
TAGS = {
    "iob2": [["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "I-LOC", "O"],
             ["B-LOC", "B-LOC", "O", "B-LOC", "O"], ["O", "O"]],
    "iob1": [["I-PER", "I-PER", "O", "I-PER", "O", "I-LOC", "I-LOC", "O"],
             ["I-LOC", "B-LOC", "O", "I-LOC", "O"], ["O", "O"]],
    "biluo": [["B-PER", "L-PER", "O", "U-PER", "O", "B-LOC", "L-LOC", "O"],
              ["U-LOC", "U-LOC", "O", "U-LOC", "O"], ["O", "O"]],
    "bioes": [["B-PER", "E-PER", "O", "S-PER", "O", "B-LOC", "E-LOC", "O"],
              ["S-LOC", "S-LOC", "O", "S-LOC", "O"], ["O", "O"]],
}


def conll_text(sentences, tags, sep="\t"):
    return "\n\n".join("\n".join(f"{tok}{sep}{tag}" for tok, tag in zip(words, sent_tags))
                       for words, sent_tags in zip(sentences, tags)) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ents_of(examples):
    return [[(e.start, e.end, e.label_) for e in eg.reference.ents] for eg in examples]


@pytest.fixture
def nlp():
    return spacy.blank("en")


# ----------------------------------------------------------------------------- CoNLL


@pytest.mark.parametrize("scheme", sorted(TAGS))
def test_conll_schemes_give_identical_entities(tmp_path, nlp, scheme):
    path = write(tmp_path / f"{scheme}.conll", conll_text(SENTENCES, TAGS[scheme]))
    expected = {"bioes": "biluo"}.get(scheme, scheme)
    assert detect_scheme(path) == expected
    examples = read_examples(path, nlp)
    assert ents_of(examples) == ENTITIES
    # Explicit scheme and strict mode agree on valid files.
    assert ents_of(read_examples(path, nlp, scheme=scheme, strict=True)) == ENTITIES
    eg = examples[0]
    assert [t.text for t in eg.predicted] == SENTENCES[0]
    assert eg.predicted.text == " ".join(SENTENCES[0])
    assert not eg.predicted.ents
    # Tokens outside entities are O, not missing.
    assert eg.reference[2].ent_iob_ == "O"


def test_conll_whitespace_columns_docstart_and_crlf(tmp_path, nlp):
    text = ("-DOCSTART- -X- -X- O\r\n\r\n"
            "EU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\nGerman JJ B-NP B-MISC\r\n\r\n"
            "-DOCSTART- -X- -X- O\r\n"
            "Peter  NNP B-NP  B-PER\r\nBlackburn NNP I-NP I-PER\r\n")
    path = write(tmp_path / "four.conll", text)
    examples = read_examples(path, nlp)
    assert [[t.text for t in eg.reference] for eg in examples] == [
        ["EU", "rejects", "German"], ["Peter", "Blackburn"]]
    assert ents_of(examples) == [[(0, 1, "ORG"), (2, 3, "MISC")], [(0, 2, "PER")]]


def test_conll_types_with_hyphens_and_bom(tmp_path, nlp):
    path = write(tmp_path / "w.conll",
                 "\ufeffThe\tO\nMona\tB-creative-work\nLisa\tI-creative-work\n")
    assert ents_of(read_examples(path, nlp)) == [[(1, 3, "creative-work")]]


@pytest.mark.parametrize("tags,expected", [
    (["O", "I-PER", "I-PER"], [(1, 3, "PER")]),                       # I- after O starts
    (["B-PER", "I-LOC", "O"], [(0, 1, "PER"), (1, 2, "LOC")]),        # type change
    (["I-LOC"], [(0, 1, "LOC")]),                                     # I- at sentence start
    (["O", "L-PER", "O"], [(1, 2, "PER")]),                           # BILUO L- without B-
    (["B-PER", "O", "U-LOC"], [(0, 1, "PER"), (2, 3, "LOC")]),        # BILUO entity left open
    (["B-PER", "I-PER"], [(0, 2, "PER")]),                            # open at sentence end
])
def test_tags_to_spans_repairs_like_conlleval(tags, expected):
    assert tags_to_spans(tags) == expected


def test_repair_versus_strict(tmp_path, nlp):
    path = write(tmp_path / "bad.conll",
                 "Hello\tB-PER\nthere\tO\n\nJohn\tO\nSmith\tI-PER\nvisited\tB-PER\nRome\tI-LOC\n")
    # IOB2 with invalid sequences (detected as IOB2 because B- also starts entities).
    assert detect_scheme(path) == "iob2"
    assert ents_of(read_examples(path, nlp)) == [
        [(0, 1, "PER")], [(1, 2, "PER"), (2, 3, "PER"), (3, 4, "LOC")]]
    with pytest.raises(CorpusError, match=r"bad\.conll:5: .*I-PER after O"):
        read_examples(path, nlp, strict=True)


def test_strict_biluo(tmp_path, nlp):
    path = write(tmp_path / "b.conll", "A\tU-PER\nB\tO\nC\tL-PER\n")
    assert ents_of(read_examples(path, nlp)) == [[(0, 1, "PER"), (2, 3, "PER")]]
    with pytest.raises(CorpusError, match=r"b\.conll:3: invalid BILUO sequence: L-PER after O"):
        read_examples(path, nlp, strict=True)
    unclosed = write(tmp_path / "u.conll", "A\tU-PER\nB\tB-PER\n")
    with pytest.raises(CorpusError, match=r"u\.conll:2: .*ends inside an entity"):
        read_examples(unclosed, nlp, strict=True)


def test_explicit_scheme_rejects_foreign_prefixes(tmp_path, nlp):
    path = write(tmp_path / "x.conll", "A\tO\nB\tU-PER\n")
    with pytest.raises(CorpusError, match=r"x\.conll:2: tag 'U-PER' is not valid in the iob2"):
        read_examples(path, nlp, scheme="iob2")
    with pytest.raises(CorpusError, match=r"E011"):
        read_examples(path, nlp, scheme="bilou")


@pytest.mark.parametrize("text,line,problem", [
    ("A\tO\nB\n", 2, "found 1 column"),
    ("A\tO\nB\tO\tO\n", 2, "expected 2 TAB-separated columns"),
    ("A B O\nC D\n", 2, "expected 3 space-separated columns"),
    ("A\tO\n\tB-PER\n", 2, "empty token"),
    ("A\tO\n\nB\tB_PER\n", 3, "bad tag 'B_PER'"),
    ("A\tX-PER\n", 1, "bad tag 'X-PER'"),
    ("A\tB-\n", 1, "bad tag 'B-'"),
    ("A\to\n", 1, "bad tag 'o'"),
])
def test_conll_malformed(tmp_path, nlp, text, line, problem):
    path = write(tmp_path / "m.conll", text)
    with pytest.raises(CorpusError) as err:
        read_examples(path, nlp)
    message = str(err.value)
    assert "[E002]" in message and f"m.conll:{line}: " in message and problem in message


def test_non_utf8(tmp_path, nlp):
    conll = tmp_path / "l1.conll"
    conll.write_bytes("A\tO\nCaf\xe9\tB-LOC\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"l1\.conll:2: not valid UTF-8: byte 0xe9"):
        read_examples(conll, nlp)
    jsonl = tmp_path / "l1.jsonl"
    jsonl.write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    with pytest.raises(CorpusError, match=r"l1\.jsonl:2: not valid UTF-8"):
        read_examples(jsonl, nlp)


def test_iter_conll_streams_sentences(tmp_path):
    path = write(tmp_path / "s.conll", conll_text(SENTENCES, TAGS["iob2"]))
    sents = list(iter_conll(path))
    assert [s.line for s in sents] == [1, 10, 16]
    assert [s.spans for s in sents] == ENTITIES


# ----------------------------------------------------------------------------- JSONL


def test_jsonl_exclusive(tmp_path, nlp):
    records = [{"text": "card not here", "label": "card_arrival"},
               {"text": "", "label": "other"},
               {"text": "   ", "label": "other"},
               {"text": "rate?", "label": "exchange_rate"}]
    path = write(tmp_path / "t.jsonl",
                 "\n".join(json.dumps(r) for r in records) + "\n\n")  # trailing blank line
    examples = read_examples(path, nlp)
    assert len(examples) == 4  # empty and whitespace-only texts are kept
    assert examples[0].reference.cats == {"card_arrival": 1.0, "exchange_rate": 0.0,
                                          "other": 0.0}
    assert examples[1].predicted.text == "" and examples[2].predicted.text == "   "
    assert examples[3].reference.cats["exchange_rate"] == 1.0
    assert [t.text for t in examples[0].predicted] == ["card", "not", "here"]
    assert not examples[0].predicted.cats
    # Extra labels get 0.0 too.
    extra = read_examples(path, nlp, labels=["zzz"])
    assert extra[0].reference.cats["zzz"] == 0.0


def test_jsonl_multi_label(tmp_path, nlp):
    path = write(tmp_path / "m.jsonl",
                 '{"text": "a", "labels": ["x", "y"]}\n{"text": "b", "labels": []}\n'
                 '{"text": "c", "labels": ["z"]}\n')
    examples = read_examples(path, nlp)
    assert [eg.reference.cats for eg in examples] == [
        {"x": 1.0, "y": 1.0, "z": 0.0}, {"x": 0.0, "y": 0.0, "z": 0.0},
        {"x": 0.0, "y": 0.0, "z": 1.0}]


@pytest.mark.parametrize("line,problem", [
    ('{"text": "a", "label": "x"', "invalid JSON"),
    ('["a", "x"]', "expected a JSON object, found list"),
    ('{"label": "x"}', 'missing "text"'),
    ('{"text": 3, "label": "x"}', '"text" must be a string'),
    ('{"text": "a", "label": 1}', '"label" must be a string, found int'),
    ('{"text": "a", "label": ""}', '"label" is an empty string'),
    ('{"text": "a", "label": "x", "labels": ["x"]}', 'has both "label" and "labels"'),
    ('{"text": "a"}', 'has neither "label"'),
    ('{"text": "a", "labels": "x"}', '"labels" must be a list of strings, found str'),
    ('{"text": "a", "labels": ["x", null]}', '"labels" must be a list of strings'),
    ('{"text": "a", "labels": ["x"]}', 'uses "labels" but line 1 uses "label"'),
])
def test_jsonl_malformed(tmp_path, nlp, line, problem):
    path = write(tmp_path / "bad.jsonl", '{"text": "fine", "label": "x"}\n\n' + line + "\n")
    with pytest.raises(CorpusError) as err:
        read_examples(path, nlp)
    assert "bad.jsonl:3: " in str(err.value) and problem in str(err.value)


# ----------------------------------------------------------------------------- DocBin


def test_docbin(tmp_path, nlp):
    doc = nlp("Anna lives in Paris")
    doc.ents = [Span(doc, 0, 1, "PER"), Span(doc, 3, 4, "LOC")]
    DocBin(docs=[doc]).to_disk(tmp_path / "train.spacy")
    examples = read_examples(tmp_path / "train.spacy", nlp)
    assert ents_of(examples) == [[(0, 1, "PER"), (3, 4, "LOC")]]
    assert examples[0].predicted.text == "Anna lives in Paris"
    info = resolve_corpus(tmp_path)
    assert (info.task, info.labels, list(info.files)) == ("ner", ["LOC", "PER"], ["train"])
    write(tmp_path / "junk.spacy", "not a docbin")
    with pytest.raises(CorpusError, match="E006"):
        read_examples(tmp_path / "junk.spacy", nlp)


def test_unknown_suffix_and_missing_file(tmp_path, nlp):
    with pytest.raises(CorpusError, match="E005"):
        read_examples(write(tmp_path / "a.csv", "x"), nlp)
    with pytest.raises(FileNotFoundError, match="E014"):
        read_examples(tmp_path / "nothing.conll", nlp)


# ----------------------------------------------------------------------------- writers


@pytest.mark.parametrize("scheme", ["iob2", "iob1", "biluo", "bioes"])
def test_write_conll_round_trip(tmp_path, nlp, scheme):
    source = write(tmp_path / "src.conll", conll_text(SENTENCES, TAGS["iob2"]))
    examples = read_examples(source, nlp)
    out = tmp_path / "out" / f"{scheme}.conll"
    assert write_conll(out, examples, scheme=scheme) == 3
    assert out.read_text(encoding="utf-8") == conll_text(SENTENCES, TAGS[scheme]) + "\n"
    assert ents_of(read_examples(out, nlp)) == ENTITIES


def test_write_conll_skips_whitespace_tokens(tmp_path, nlp):
    doc = nlp("Anna  went\nhome")
    doc.ents = [Span(doc, 0, 1, "PER")]
    assert write_conll(tmp_path / "w.conll", [doc, nlp("")]) == 1
    assert (tmp_path / "w.conll").read_text() == "Anna\tB-PER\nwent\tO\nhome\tO\n\n"


def test_write_jsonl_round_trip(tmp_path, nlp):
    records = [{"text": "a b", "label": "x"}, {"text": "", "label": "y"}]
    path = tmp_path / "r.jsonl"
    assert write_jsonl(path, records) == 2
    examples = read_examples(path, nlp)
    again = tmp_path / "again.jsonl"
    write_jsonl(again, examples)
    assert again.read_text() == path.read_text()
    multi = tmp_path / "m.jsonl"
    write_jsonl(multi, examples, multi_label=True)
    assert [json.loads(l)["labels"] for l in multi.read_text().splitlines()] == [["x"], ["y"]]
    with pytest.raises(CorpusError, match="E013"):
        write_jsonl(tmp_path / "bad.jsonl", [{"text": "a"}])
    with pytest.raises(CorpusError, match="E013"):
        write_jsonl(tmp_path / "bad.jsonl", [nlp("no cats")])


def test_spans_to_tags_iob1_adjacent():
    assert spans_to_tags(3, [(0, 1, "LOC"), (1, 3, "LOC")], "iob1") == ["I-LOC", "B-LOC", "I-LOC"]


# ----------------------------------------------------------------------------- corpora


def make_ner_corpus(directory: Path) -> Path:
    directory.mkdir(parents=True)
    write(directory / "train.conll", conll_text(SENTENCES, TAGS["iob2"]))
    write(directory / "dev.conll", conll_text(SENTENCES[:1], TAGS["iob2"][:1]))
    return directory


def make_textcat_corpus(directory: Path, multi=False) -> Path:
    directory.mkdir(parents=True)
    key = "labels" if multi else "label"
    value = (lambda l: [l]) if multi else (lambda l: l)
    write(directory / "train.jsonl", "".join(
        json.dumps({"text": t, key: value(l)}) + "\n"
        for t, l in [("good film", "pos"), ("bad film", "neg"), ("great", "pos")]))
    write(directory / "dev.jsonl", json.dumps({"text": "awful", key: value("neg")}) + "\n")
    return directory


def test_resolve_by_path_and_task_detection(tmp_path, nlp):
    ner = resolve_corpus(make_ner_corpus(tmp_path / "myner"))
    assert (ner.name, ner.task, ner.multi_label, ner.labels) == ("myner", "ner", False,
                                                                  ["LOC", "PER"])
    assert set(ner.files) == {"train", "dev"}
    assert len(ner.examples("dev", nlp)) == 1
    with pytest.raises(CorpusError, match=r"E004.*Available splits: train, dev"):
        ner.examples("test", nlp)
    cats = resolve_corpus(str(make_textcat_corpus(tmp_path / "mycats")))
    assert (cats.task, cats.multi_label, cats.labels) == ("textcat", False, ["neg", "pos"])
    # Splits share the corpus label set: "pos" never occurs in dev but is 0.0 there.
    assert cats.examples("dev", nlp)[0].reference.cats == {"neg": 1.0, "pos": 0.0}
    multi = resolve_corpus(make_textcat_corpus(tmp_path / "mymulti", multi=True))
    assert multi.multi_label is True
    single = resolve_corpus(tmp_path / "mycats" / "dev.jsonl")
    assert (single.name, list(single.files), single.labels) == ("mycats", ["dev"], ["neg"])


def test_resolve_rejects_ambiguous_and_empty(tmp_path):
    mixed = make_ner_corpus(tmp_path / "mixed")
    write(mixed / "test.jsonl", '{"text": "a", "label": "x"}\n')
    with pytest.raises(CorpusError, match="E010.*different tasks"):
        resolve_corpus(mixed)
    write(mixed / "train.jsonl", '{"text": "a", "label": "x"}\n')
    with pytest.raises(CorpusError, match="E010.*several files"):
        resolve_corpus(mixed)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="E003"):
        resolve_corpus(tmp_path / "empty")


def test_resolve_by_name_under_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    make_textcat_corpus(data / "tiny_cats")
    make_ner_corpus(data / "tiny_ner")
    (data / "not_a_corpus").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYBRIDNLP_DATA", str(data))
    info = resolve_corpus("tiny_cats")
    assert isinstance(info, CorpusInfo)
    assert (info.name, info.path, info.task) == ("tiny_cats", data / "tiny_cats", "textcat")
    with pytest.raises(CorpusError) as err:
        resolve_corpus("nope")
    assert "[E001]" in str(err.value) and "tiny_cats, tiny_ner" in str(err.value)
    assert "not_a_corpus" not in str(err.value)
    monkeypatch.delenv("HYBRIDNLP_DATA")
    with pytest.raises(CorpusError, match=r"E001.*HYBRIDNLP_DATA unset"):
        resolve_corpus("tiny_cats")


# ----------------------------------------------------------------------------- spaCy reader


READER_CONFIG = """
[paths]
train = null
dev = null

[corpora]

[corpora.train]
@readers = "hybridnlp.Corpus.v1"
path = ${paths.train}
limit = 2

[corpora.dev]
@readers = "hybridnlp.Corpus.v1"
path = ${paths.dev}
"""


def test_reader_registered_and_resolves_from_config(tmp_path, nlp):
    assert registry.readers.get("hybridnlp.Corpus.v1") is create_corpus_reader
    corpus = make_ner_corpus(tmp_path / "c")
    config = load_config_from_str(READER_CONFIG, overrides={
        "paths.train": str(corpus / "train.conll"), "paths.dev": None})
    resolved = registry.resolve(config)["corpora"]
    train = list(resolved["train"](nlp))
    assert ents_of(train) == ENTITIES[:2]  # limit = 2
    assert list(resolved["dev"](nlp)) == []  # unset path yields nothing
    # Each call reads the file again; shuffle keeps the same examples.
    reader = create_corpus_reader(corpus / "train.conll", shuffle=True)
    assert sorted(map(str, ents_of(reader(nlp)))) == sorted(map(str, ENTITIES))
    assert len(list(reader(nlp))) == 3


def test_reader_errors(tmp_path):
    corpus = make_ner_corpus(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="E014"):
        create_corpus_reader(tmp_path / "missing.conll")
    with pytest.raises(CorpusError, match="E012"):
        create_corpus_reader(corpus)
    with pytest.raises(CorpusError, match="E011"):
        create_corpus_reader(corpus / "train.conll", scheme="xyz")


@pytest.mark.slow
def test_spacy_train_cli_reads_jsonl(tmp_path):
    corpus = make_textcat_corpus(tmp_path / "cats")
    # A full config from spaCy's own defaults, with our reader for both corpora.
    blank = spacy.blank("en")
    blank.add_pipe("textcat")
    config = blank.config.copy()
    config["training"].update({"max_steps": 2, "eval_frequency": 1})
    for split in ("train", "dev"):
        config["corpora"][split] = {"@readers": "hybridnlp.Corpus.v1",
                                    "path": "${paths.%s}" % split}
    config.to_disk(tmp_path / "config.cfg")
    config = tmp_path / "config.cfg"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(config), "--output", str(tmp_path / "out"),
         "--paths.train", str(corpus / "train.jsonl"), "--paths.dev", str(corpus / "dev.jsonl")],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    trained = spacy.load(tmp_path / "out" / "model-last")
    assert set(trained.get_pipe("textcat").labels) == {"neg", "pos"}


# ----------------------------------------------------------------------------- real corpora

DATA = os.environ.get("HYBRIDNLP_DATA")


@pytest.mark.skipif(not DATA, reason="HYBRIDNLP_DATA not set")
def test_real_corpora_counts(nlp):
    conll = read_examples(Path(DATA) / "conll2003" / "dev.conll", nlp)
    assert len(conll) == 3250  # conll2003/README.md: dev sentences
    assert sum(len(eg.reference) for eg in conll) == 51362
    assert sum(len(eg.reference.ents) for eg in conll) == 5942
    banking = resolve_corpus("banking77")
    assert (banking.task, banking.multi_label, len(banking.labels)) == ("textcat", False, 77)
    dev = banking.examples("dev", nlp)
    assert len(dev) == 1000
    assert all(sum(eg.reference.cats.values()) == 1.0 for eg in dev)


# ----------------------------------------------------------------------------- n_sents


def test_conll_n_sents_groups_consecutive_sentences(tmp_path, nlp):
    path = write(tmp_path / "train.conll", conll_text(SENTENCES, TAGS["iob2"]))
    grouped = read_examples(path, nlp, n_sents=2)
    assert len(grouped) == 2  # 2 + the 1 left over
    first = grouped[0].reference
    assert [t.text for t in first] == SENTENCES[0] + SENTENCES[1]
    assert [s.text for s in first.sents] == [" ".join(SENTENCES[0]), " ".join(SENTENCES[1])]
    offset = len(SENTENCES[0])
    assert ents_of(grouped[:1]) == [ENTITIES[0] + [(s + offset, e + offset, l) for s, e, l in ENTITIES[1]]]
    assert ents_of(grouped[1:]) == [ENTITIES[2]]
    # The predicted side has the same tokens and no annotation.
    assert [t.text for t in grouped[0].predicted] == [t.text for t in first]
    assert not grouped[0].predicted.has_annotation("ENT_IOB")
    # Through the registered reader: one doc of all three sentences, every entity kept.
    examples = list(create_corpus_reader(path, n_sents=3)(nlp))
    assert len(examples) == 1 and len(examples[0].reference.ents) == sum(map(len, ENTITIES))
    # limit counts docs.
    assert len(list(create_corpus_reader(path, n_sents=2, limit=1)(nlp))) == 1


def test_n_sents_errors(tmp_path, nlp):
    conll = write(tmp_path / "train.conll", conll_text(SENTENCES, TAGS["iob2"]))
    jsonl = write(tmp_path / "train.jsonl", '{"text": "hi", "label": "greet"}\n')
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_sents must be"):
            read_examples(conll, nlp, n_sents=bad)
    with pytest.raises(ValueError, match="n_sents must be"):
        create_corpus_reader(conll, n_sents=0)
    with pytest.raises(ValueError, match="CoNLL files only"):
        read_examples(jsonl, nlp, n_sents=2)
    assert len(read_examples(jsonl, nlp, n_sents=1)) == 1
