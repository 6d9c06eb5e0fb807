"""``llm_textcat`` and its backends: prompts, answer parsing, label scoring, a local causal
LM (tiny, random), an OpenAI-compatible server (a local one the test runs), the llm profile.

The fake backends answer by keywords, so the component's arithmetic and bookkeeping are
checked exactly; no test reaches anything outside this machine.
"""

import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.training import Example

try:
    from .llm_fixtures import KeywordLLM, KeywordScorer, write_tiny_causal_lm
    from .transformer_fixtures import ODD_TEXTS, TEXTCAT_TRAIN
except ImportError:  # tests/ is not a package
    from llm_fixtures import KeywordLLM, KeywordScorer, write_tiny_causal_lm
    from transformer_fixtures import ODD_TEXTS, TEXTCAT_TRAIN

from hybridnlp.components.llm.backends import LocalCausalLM, ServerLLM, create_llm
from hybridnlp.components.llm.llm_textcat import parse_label

REPO = Path(__file__).resolve().parents[1]
LABELS = ("negative", "positive")


def _examples(nlp, data=TEXTCAT_TRAIN):
    return [Example.from_dict(nlp.make_doc(text), {"cats": {l: float(l == label) for l in LABELS}})
            for text, label in data]


def _llm_nlp(backend="test.KeywordLLM.v1", label_texts=None, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_textcat", config={"backend": {"@misc": backend}, **config})
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    if label_texts is not None:
        nlp.get_pipe("llm_textcat").initialize(lambda: examples, nlp=nlp, label_texts=label_texts)
    return nlp


@pytest.fixture(scope="module")
def tiny_lm_master(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return write_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.mark.parametrize("answer,label", [
    ("positive", "positive"), ("Positive.", "positive"), ('"negative"', "negative"),
    ("Category: negative", "negative"), ("card arrival", "card_arrival"), ("CARD_ARRIVAL", "card_arrival"),
    ("The category is negative, not positive.", "negative"), ("It is about card arrival.", "card_arrival"),
    ("I cannot tell.", None), ("", None), ("   ", None), ("positively", None),
])
def test_parse_label(answer, label):
    assert parse_label(answer, ["negative", "positive", "card_arrival", "card"]) == label


def test_prompt_lists_labels_descriptions_and_examples():
    nlp = _llm_nlp(label_texts={"positive": "the writer liked it"}, examples_per_label=1)
    pipe = nlp.get_pipe("llm_textcat")
    prompt = pipe.prompt("what  a\n great day")
    assert "- negative\n- positive: the writer liked it\n" in prompt
    # one example per label, round robin in label order, then the text (whitespace collapsed)
    assert f"Examples:\nText: {TEXTCAT_TRAIN[3][0]}\nCategory: negative\n\nText: {TEXTCAT_TRAIN[0][0]}\nCategory: positive" in prompt
    assert prompt.endswith("Text: what a great day\nAnswer with the category name only.\nCategory:")


def test_generate_parses_answers_and_never_drops_a_doc():
    nlp = _llm_nlp(save_io=True, max_text_chars=40)
    pipe = nlp.get_pipe("llm_textcat")
    assert pipe.method == "generate"
    backend = pipe.backend
    texts = ["I love it", "a bad film", "the weather today", "", "   ", "bad " * 30]
    with pytest.warns(UserWarning) as record:
        docs = list(nlp.pipe(texts))
    messages = " ".join(str(w.message) for w in record)
    assert "1 of 6 texts were cut" in messages and "1 of 4 answers named no label" in messages
    # no calibration texts: the answered label gets the prior mean 2 / 2.5, the other the rest
    assert docs[0].cats == pytest.approx({"negative": 0.2, "positive": 0.8})
    assert docs[1].cats == pytest.approx({"negative": 0.8, "positive": 0.2})
    for doc in docs[2:5]:  # no label named, or nothing to ask about: equal probabilities
        assert doc.cats == {"negative": 0.5, "positive": 0.5}
    assert len(backend.asked) == 4  # the empty and whitespace-only texts were not sent
    assert docs[0].user_data["llm_io"]["llm_textcat"]["response"] == "Positive."
    assert docs[3].user_data["llm_io"]["llm_textcat"] == {"prompt": None, "response": None}
    assert len(docs[5].user_data["llm_io"]["llm_textcat"]["prompt"].split("Text: ")[1].split("\n")[0]) == 40
    assert docs[0]._.hybrid_cats["llm_textcat"] == docs[0].cats


def test_generated_answers_get_their_labels_precision_on_dev():
    nlp = _llm_nlp()
    pipe = nlp.get_pipe("llm_textcat")
    # the keyword model is right on the first and third text, wrong on the second
    dev = _examples(nlp, [("I love it", "positive"), ("great idea but a bad film", "negative"), ("so bad", "negative"),
                          ("the weather", "negative")])  # no label named: not counted
    with pytest.warns(UserWarning, match="1 of 4 answers named no label"):
        pipe.initialize(lambda: _examples(nlp), nlp=nlp, dev_corpus=lambda _: dev)
    assert pipe.cfg["precision"] == {"negative": [1, 1], "positive": [1, 2]}
    assert nlp("I love it").cats == pytest.approx({"positive": 3 / 4.5, "negative": 1.5 / 4.5})
    assert nlp("bad").cats == pytest.approx({"negative": 3 / 3.5, "positive": 0.5 / 3.5})
    # scored answers keep the model's own probabilities: nothing to calibrate
    scorer = _llm_nlp("test.KeywordScorer.v1").get_pipe("llm_textcat")
    scorer.initialize(lambda: _examples(nlp), nlp=nlp, dev_corpus=lambda _: dev)
    assert scorer.cfg["precision"] == {} and not scorer.backend.asked


def test_choices_give_the_softmax_of_the_scores():
    nlp = _llm_nlp("test.KeywordScorer.v1")
    pipe = nlp.get_pipe("llm_textcat")
    assert pipe.method == "choices"
    doc = nlp("good and great but boring")  # scores: positive 2, negative 1
    e = np.exp([1.0, 2.0])
    assert doc.cats["positive"] == pytest.approx(e[1] / e.sum()) and doc.cats["negative"] == pytest.approx(e[0] / e.sum())


@pytest.mark.parametrize("backend", ["test.KeywordLLM.v1", "test.KeywordScorer.v1"])
def test_pipe_agrees_with_call_and_round_trip(backend, tmp_path):
    nlp = _llm_nlp(backend, label_texts={"negative": "the writer disliked it"}, examples_per_label=1)
    texts = ODD_TEXTS + ["I love it", "bad and boring", "good " * 3000]
    with pytest.warns(UserWarning):
        piped = [doc.cats for doc in nlp.pipe(texts, batch_size=3)]
    with pytest.warns(UserWarning):
        called = [nlp(text).cats for text in texts]
    assert piped == called
    for cats in piped:
        assert sum(cats.values()) == pytest.approx(1.0)
    nlp.to_disk(tmp_path / "llm")
    loaded = spacy.load(tmp_path / "llm")
    with pytest.warns(UserWarning):
        assert [doc.cats for doc in loaded.pipe(texts, batch_size=3)] == piped
    pipe = loaded.get_pipe("llm_textcat")
    assert pipe.cfg["label_texts"] == {"negative": "the writer disliked it"}
    assert pipe.prompt("x") == nlp.get_pipe("llm_textcat").prompt("x")
    again = spacy.blank("en").add_pipe("llm_textcat", config={"backend": {"@misc": backend}})
    again.from_bytes(pipe.to_bytes())
    assert again.cfg == pipe.cfg
    # corrupt or missing saved data
    (tmp_path / "llm" / "llm_textcat" / "cfg").write_text('{"format_version": 1}', encoding="utf8")
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "llm")
    (tmp_path / "llm" / "llm_textcat" / "cfg").unlink()
    with pytest.raises(OSError, match="E102"):
        spacy.load(tmp_path / "llm")


def test_errors(tmp_path):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("llm_textcat", config={"backend": {"@misc": "test.KeywordLLM.v1"}})
    with pytest.raises(ValueError, match="E100"):
        nlp("not initialized")
    multi = [Example.from_dict(nlp.make_doc("x"), {"cats": {"a": 1.0, "b": 1.0}})]
    with pytest.raises(ValueError, match="E530"):
        pipe.initialize(lambda: multi, nlp=nlp)
    with pytest.raises(ValueError, match="E532"):
        pipe.initialize(lambda: _examples(nlp), nlp=nlp, label_texts={"neutral": "neither"})
    bad = [({"method": "choices"}, "E547"), ({"template": "no placeholders"}, "E548"),
           ({"method": "vote"}, "E104"), ({"examples_per_label": -1}, "E104"), ({"max_text_chars": 0}, "E104")]
    for config, code in bad:
        with pytest.raises(ValueError, match=code):
            spacy.blank("en").add_pipe("llm_textcat", config={"backend": {"@misc": "test.KeywordLLM.v1"}, **config})
    with pytest.raises(ValueError, match="E540"):
        spacy.blank("en").add_pipe("llm_textcat")  # the default backend needs a model
    with pytest.raises(OSError, match="E541"):
        create_llm(str(tmp_path / "no-such-model"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}", encoding="utf8")
    with pytest.raises(OSError, match="E541"):
        LocalCausalLM(str(tmp_path / "broken")).generate(["hello"])
    pickled = write_tiny_causal_lm(tmp_path / "pickled", safetensors=False)
    assert (pickled / "pytorch_model.bin").is_file()
    with pytest.raises(OSError, match="E541"):  # refused, never unpickled
        LocalCausalLM(str(pickled)).generate(["hello"])
    with pytest.raises(ValueError, match="E544"):
        ServerLLM("http://127.0.0.1:9/v1", max_concurrency=0)
    with pytest.raises(ValueError, match="E544"):
        ServerLLM("http://127.0.0.1:9/v1", retries=-1)
    with pytest.raises(ValueError, match="E544"):
        ServerLLM("http://127.0.0.1:9/v1", timeout=0)


def _scored_from_scratch(lm, prompt, choice):
    """log P(choice + end | prompt), the whole sequence run through the model at once."""
    import torch

    context = lm.format(prompt)
    ctx = lm._encode(context)
    sep = "" if lm._tokenizer.chat_template else " "
    cont = lm._continuation(context, ctx, sep + choice) + lm._end_ids()
    with torch.no_grad():
        logp = torch.log_softmax(lm._model(input_ids=torch.tensor([ctx + cont])).logits[0].float(), dim=-1)
    return sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))


def test_local_model_scores_choices_like_a_full_forward_pass(tiny_lm_master):
    """Reading the prompt once and continuing every choice from its cache (a few choices at
    a time) gives the log-probabilities of scoring each prompt + choice + end from scratch;
    the end is scored, so a label that starts a longer one is not favoured for being short."""
    lm = LocalCausalLM(str(tiny_lm_master), choice_batch=2)
    prompts = ["Text: I love this movie\nCategory:", "Text: terrible food\nCategory:"]
    choices = ["positive", "negative", "very good food", "positive text"]
    fast = lm.score_choices(prompts, choices)
    assert lm._end_ids() == [3]  # no token for a newline in this vocabulary: the model's end token
    for i, prompt in enumerate(prompts):
        for j, choice in enumerate(choices):
            assert fast[i, j] == pytest.approx(_scored_from_scratch(lm, prompt, choice), abs=1e-4)
    answers = lm.generate(prompts + ["Text: a much longer text about the weather in paris today\nCategory:"])
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert lm.generate(prompts[:1]) == answers[:1]  # greedy and padding-independent
    with pytest.raises(ValueError, match="E549"):  # longer than the model's 1,024 positions
        lm.score_choices(["good " * 1100], ["positive"])
    with pytest.raises(ValueError, match="E549"):
        lm.generate(["good " * 1100])


def test_prompts_sharing_a_prefix_read_only_their_own_part(tiny_lm_master):
    """The instructions and the label list are read once; each text's scores are still
    those of its whole prompt read from scratch."""
    head = "Classify the text into one of these categories:\n- positive: good\n- negative: bad\nText: "
    prompts = [head + text + "\nCategory:" for text in ("I love this movie", "terrible food", "the weather")]
    choices = ["positive", "negative"]
    reusing = LocalCausalLM(str(tiny_lm_master))
    scores = reusing.score_choices(prompts, choices)
    assert reusing.prefix_tokens_reused >= 2 * 20  # the shared head, for the 2nd and 3rd prompt
    plain = LocalCausalLM(str(tiny_lm_master), reuse_prefix=False)
    np.testing.assert_allclose(scores, plain.score_choices(prompts, choices), atol=1e-4)
    assert plain.prefix_tokens_reused == 0
    for i, prompt in enumerate(prompts):
        for j, choice in enumerate(choices):
            assert scores[i, j] == pytest.approx(_scored_from_scratch(reusing, prompt, choice), abs=1e-4)
    # the same prompt again: all but its last token come from the cache
    again = reusing.score_choices(prompts[-1:], choices)
    np.testing.assert_allclose(again, scores[-1:], atol=1e-4)


def test_threads_sharing_one_local_model(tiny_lm_master):
    """Threads scoring through one model (a web server's workers) each get their own
    prompt's scores, although they share the cache of the last prompt read."""
    from concurrent.futures import ThreadPoolExecutor

    head = "Classify the text into one of these categories:\n- positive: good\n- negative: bad\nText: "
    prompts = [head + text + "\nCategory:" for text in
               ("I love this movie", "terrible food", "the weather", "a good book", "bad service today")]
    choices = ["positive", "negative"]
    expected = LocalCausalLM(str(tiny_lm_master), reuse_prefix=False).score_choices(prompts, choices)
    shared = LocalCausalLM(str(tiny_lm_master))
    jobs = [i % len(prompts) for i in range(60)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: shared.score_choices([prompts[i]], choices)[0], jobs))
    for i, scores in zip(jobs, got):
        np.testing.assert_allclose(scores, expected[i], atol=1e-4)
    assert shared.prefix_tokens_reused > 0


def test_local_model_uses_its_chat_template(tmp_path):
    template = "{% for m in messages %}user: {{ m['content'] }}\n{% endfor %}assistant:"
    lm = LocalCausalLM(str(write_tiny_causal_lm(tmp_path / "chat", chat_template=template)))
    assert lm.format("hello") == "user: hello\nassistant:"
    scores = lm.score_choices(["hello"], ["positive", "negative"])
    for j, choice in enumerate(["positive", "negative"]):
        assert scores[0, j] == pytest.approx(_scored_from_scratch(lm, "hello", choice), abs=1e-4)


def test_templates_with_other_braces():
    def build(template):
        return _llm_nlp(template=template)

    for bad in ['Answer as JSON like {"label": "x"}. {labels} {text}', "{{text}} {labels}", "{labels}{text}{0}",
                "{labels} {text"]:
        with pytest.raises(ValueError, match="E548"):
            build(bad)
    nlp = build('Answer as JSON like {{"label": "x"}}.\n{labels}\n{examples}Text: {text}\nCategory:')
    assert 'JSON like {"label": "x"}' in nlp.get_pipe("llm_textcat").prompt("I love it")
    assert max(nlp("I love it").cats, key=nlp("I love it").cats.get) == "positive"


def test_parsed_answers_keep_at_least_an_equal_share():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("llm_textcat", config={"backend": {"@misc": "test.KeywordLLM.v1"}})
    pipe.initialize(lambda: [], nlp=nlp, labels=["positive", "negative", "neutral"])
    pipe.cfg["precision"] = {"positive": [0, 4]}  # always wrong on dev: (0 + 2) / (4 + 2.5) < 1/3
    assert nlp("I love it").cats == pytest.approx({"positive": 1 / 3, "negative": 1 / 3, "neutral": 1 / 3})
    assert parse_label("C", ["C++", "C"]) == "C" and parse_label("c++", ["C++", "C"]) == "C++"
    assert pipe.prompt_text("odd \ud800 char") == "odd ? char"  # a lone surrogate cannot reach a tokenizer


class _ChatServer(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible endpoint: answers by keyword, or fails on request."""

    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatServer.seen.append((self.path, self.headers.get("Authorization"), body))
        prompt = body["messages"][0]["content"]
        if "BUSY" in prompt and not any("BUSY" in b["messages"][0]["content"] for _, _, b in _ChatServer.seen[:-1]):
            self.send_response(429)  # busy the first time it sees such a prompt
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if "FAIL" in prompt:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "bad request"}')
            return
        answer = KeywordLLM().generate([prompt])[0]
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_server_backend(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        monkeypatch.setenv("TEST_LLM_KEY", "secret")
        nlp = spacy.blank("en")
        nlp.add_pipe("llm_textcat", config={"backend": {"@misc": "hybridnlp.LLM.v1", "model": url,
                                                        "server_model": "tiny", "api_key_env": "TEST_LLM_KEY"}})
        nlp.initialize(lambda: _examples(nlp))
        docs = list(nlp.pipe(["I love it", "so bad", "great fun", "bad bad"]))
        assert [max(d.cats, key=d.cats.get) for d in docs] == ["positive", "negative", "positive", "negative"]
        path, auth, body = _ChatServer.seen[-1]
        assert path == "/v1/chat/completions" and auth == "Bearer secret"
        assert body["model"] == "tiny" and body["temperature"] == 0.0
        with pytest.raises(OSError, match="E543"):
            nlp("FAIL this one")
        assert nlp("BUSY but I love it").cats["positive"] > 0.5  # a 429 is tried again
        assert sum("BUSY" in b["messages"][0]["content"] for _, _, b in _ChatServer.seen) == 2
        monkeypatch.delenv("TEST_LLM_KEY")
        with pytest.raises(OSError, match="E546"):
            nlp("I love it")
    finally:
        server.shutdown()
        server.server_close()
    closed = ServerLLM(url, retries=0, timeout=2)  # nothing listens there any more
    with pytest.raises(OSError, match="E542"):
        closed.generate(["hello"])


def test_llm_profile_trains_and_loads_in_a_fresh_process(tiny_lm_master, tmp_path):
    from hybridnlp.training import train

    model_dir = tmp_path / "lm"
    shutil.copytree(tiny_lm_master, model_dir)
    nlp = train("llm", REPO / "corpora" / "tiny_textcat", tmp_path / "out", quiet=True,
                overrides={"paths.lm": str(model_dir)})
    pipe = nlp.get_pipe("llm_textcat")
    assert nlp.pipe_names == ["llm_textcat"] and pipe.method == "choices" and len(pipe.labels) == 5
    texts = ["I want my money back", "Where is my parcel?"]
    expected = [doc.cats for doc in nlp.pipe(texts)]
    assert all(sum(c.values()) == pytest.approx(1.0) for c in expected)
    code = ("import json, sys, spacy; nlp = spacy.load(sys.argv[1]); "
            "print(json.dumps([d.cats for d in nlp.pipe(json.loads(sys.argv[2]))]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out"), json.dumps(texts)],
                         capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for a, b in zip(got, expected):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-6) for k in a)
    shutil.rmtree(model_dir)  # the pipeline keeps the backend's config, not the model
    with pytest.raises(OSError, match="E541"):
        spacy.load(tmp_path / "out")


def test_a_label_list_is_enough():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("llm_textcat", config={"backend": {"@misc": "test.KeywordLLM.v1"}})
    pipe.initialize(lambda: [], nlp=nlp, labels=["positive", "negative"])
    assert pipe.labels == ("positive", "negative") and nlp("I love it").cats["positive"] == pytest.approx(0.8)
