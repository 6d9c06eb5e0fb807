"""Model backends for the prompted components: anything that turns prompts into responses.

A backend is any object with ``generate(prompts) -> responses`` (:class:`LLMBackend`); one
that can also say how likely each of a fixed set of answers is (:class:`ChoiceScorer`) lets a
prompted classifier give real probabilities instead of a parsed answer. Two are shipped, and
registered for configs (``[components.llm_textcat.backend]``):

* ``hybridnlp.LocalLLM.v1`` - a local Hugging Face causal language model directory (any
  ``AutoModelForCausalLM``; its chat template is used when it has one). Loaded offline, the
  first time it is needed, on the GPU when there is one, from safetensors weights only.
  Generates greedily and scores answers (:meth:`LocalCausalLM.score_choices`); when scoring,
  the part of a prompt it shares with the previous one (instructions, labels, examples) is
  read once and kept as a key/value cache.
* ``hybridnlp.ServerLLM.v1`` - an OpenAI-compatible chat completions server (llama.cpp's
  ``llama-server``, vLLM, Ollama, ...) at a URL; the API key, if any, is read from an
  environment variable at request time and never saved.
* ``hybridnlp.LLM.v1`` - either, by what ``model`` is: a URL (``http://...``) or a directory.

Nothing is downloaded from a hub, and a saved pipeline stores only the backend's config: the
model stays where it is (a language model is too large to copy into every pipeline).
Importing this module is cheap (it is a ``spacy_misc`` entry point); torch and transformers
are imported when a local model is first used.
"""

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
from spacy.util import registry

from ...errors import Errors
from .._forking import torch_ran


@runtime_checkable
class LLMBackend(Protocol):
    """Turns prompts into responses, one each, in order."""

    def generate(self, prompts: Sequence[str]) -> List[str]:
        ...


@runtime_checkable
class ChoiceScorer(Protocol):
    """Says how likely each answer is after each prompt."""

    def score_choices(self, prompts: Sequence[str], choices: Sequence[str]) -> np.ndarray:
        """Log-probabilities, shape ``(len(prompts), len(choices))``: row i, column j is
        ``log P(choices[j] | prompts[i])`` under the model."""
        ...


def _check_positive_int(key: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(Errors.E544.format(key=key, value=value, what=f"a whole number >= {least}"))
    return value


# ---------------------------------------------------------------------- local model
_LOAD_LOCK = threading.Lock()


class LocalCausalLM:
    """A local Hugging Face causal language model (see the module docstring)."""

    def __init__(self, path: str, *, max_new_tokens: int = 16, batch_size: int = 8, choice_batch: int = 32,
                 reuse_prefix: bool = True, device: Optional[str] = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir() or not (self.path / "config.json").is_file():
            raise OSError(Errors.E541.format(path=path))
        self.max_new_tokens = _check_positive_int("max_new_tokens", max_new_tokens)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.choice_batch = _check_positive_int("choice_batch", choice_batch)
        self.device = device
        self.reuse_prefix = bool(reuse_prefix)
        self._model = None
        self._tokenizer = None
        # The last prompt read for score_choices and its key/value cache: the next prompt
        # reads only what follows the part they share (instructions, labels, examples).
        self._prefix: Optional[Tuple[List[int], Any]] = None
        self.prefix_tokens_reused = 0

    def _load(self) -> None:
        with _LOAD_LOCK:  # one load, also when several threads call the model at once
            if self._model is None:
                self._load_model()

    def _load_model(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..transformer.encoder import use_offline_hub

        use_offline_hub()
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        # On a GPU the weights keep the precision they were saved in (bf16/fp16 for most
        # released models); on a CPU float32, which is what CPUs compute fast.
        dtype = "auto" if device.startswith("cuda") else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            # safetensors only: a model stored as pickled PyTorch files is refused, not unpickled.
            model = AutoModelForCausalLM.from_pretrained(str(self.path), local_files_only=True, torch_dtype=dtype,
                                                         use_safetensors=True)
        except Exception as err:
            raise OSError(Errors.E541.format(path=self.path) + f" ({type(err).__name__}: {err})") from None
        self._model = model.to(device).eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self._tokenizer = tokenizer

    def format(self, prompt: str) -> str:
        """The text the model reads: the prompt as a user turn in the model's chat template
        (ending where the assistant's answer starts), or the prompt itself without one."""
        self._load()
        if getattr(self._tokenizer, "chat_template", None):
            return self._tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                       add_generation_prompt=True)
        return prompt

    def _encode(self, text: str) -> List[int]:
        # The chat template already holds any special tokens the model wants.
        special = not getattr(self._tokenizer, "chat_template", None)
        ids = self._tokenizer(text, add_special_tokens=special)["input_ids"]
        if special and ids and ids[-1] == self._tokenizer.sep_token_id and self._tokenizer.sep_token_id is not None:
            ids = ids[:-1]  # a BERT-style tokenizer closes every text; the answer comes after
        return ids

    def generate(self, prompts: Sequence[str]) -> List[str]:
        """Greedy completions of the prompts (at most ``max_new_tokens`` each)."""
        import torch

        self._load()
        torch_ran()
        model, tokenizer = self._model, self._tokenizer
        out: List[str] = []
        for start in range(0, len(prompts), self.batch_size):
            encoded = [self._encode(self.format(p)) for p in prompts[start:start + self.batch_size]]
            width = max(len(ids) for ids in encoded)
            self._check_length(width + self.max_new_tokens)
            pad = tokenizer.pad_token_id
            # Left padding, so that every prompt ends where its answer starts.
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded], device=model.device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded], device=model.device)
            with torch.no_grad():
                generated = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                                           max_new_tokens=self.max_new_tokens, pad_token_id=pad)
            for row in generated[:, width:]:
                out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
        return out

    def _context_limit(self) -> Optional[int]:
        config = self._model.config
        return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)

    def _check_length(self, n_tokens: int) -> None:
        limit = self._context_limit()
        if limit is not None and n_tokens > limit:
            raise ValueError(Errors.E549.format(n=n_tokens, limit=limit))

    def _end_ids(self) -> List[int]:
        """The tokens that close an answer, scored after every choice (so that a label does
        not win by being the start of a longer one): a newline after a plain prompt, the
        end-of-sequence token after a chat turn (or where a newline has no token)."""
        tokenizer = self._tokenizer
        if not getattr(tokenizer, "chat_template", None):
            newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
            if newline:
                return newline
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else self._model.config.eos_token_id
        if isinstance(eos, (list, tuple)):
            eos = eos[0] if eos else None
        return [eos] if eos is not None else []

    def score_choices(self, prompts: Sequence[str], choices: Sequence[str]) -> np.ndarray:
        """``log P(choice + end | prompt)`` for every prompt and choice: the sum of the
        token log-probabilities of the choice and of what closes an answer (:meth:`_end_ids`)
        after the prompt. The prompt is read once (only the part after what it shares with the
        previous prompt, with ``reuse_prefix``); the choices continue from its cached state,
        ``choice_batch`` at a time."""
        import torch

        self._load()
        torch_ran()
        model = self._model
        end = self._end_ids()
        result = np.zeros((len(prompts), len(choices)))
        for i, prompt in enumerate(prompts):
            context = self.format(prompt)
            ctx_ids = self._encode(context)
            sep = "" if getattr(self._tokenizer, "chat_template", None) else " "
            cont_ids = [self._continuation(context, ctx_ids, sep + choice) + end for choice in choices]
            self._check_length(len(ctx_ids) + max(len(ids) for ids in cont_ids))
            with torch.no_grad():
                ctx = self._read_prompt(ctx_ids)
                first = torch.log_softmax(ctx.logits[0, -1].float(), dim=-1)  # the choices' first token
                for start in range(0, len(choices), self.choice_batch):
                    chunk = cont_ids[start:start + self.choice_batch]
                    width = max(len(ids) for ids in chunk)
                    # Padding after a choice's end is never read: attention is causal.
                    batch = torch.tensor([ids + [ids[-1]] * (width - len(ids)) for ids in chunk], device=model.device)
                    mask = torch.ones((len(chunk), len(ctx_ids) + width), dtype=torch.long, device=model.device)
                    cache = _fresh_cache(ctx.past_key_values)
                    cache.batch_repeat_interleave(len(chunk))
                    logits = model(input_ids=batch, attention_mask=mask, past_key_values=cache, use_cache=True).logits
                    logp = torch.log_softmax(logits.float(), dim=-1)
                    for j, ids in enumerate(chunk):
                        total = float(first[ids[0]])
                        for k in range(1, len(ids)):
                            total += float(logp[j, k - 1, ids[k]])
                        result[i, start + j] = total
        return result

    def _read_prompt(self, ctx_ids: List[int]):
        """The model's output for the prompt (its last logits and key/value cache), reading
        only the tokens after the part it shares with the previous prompt (at least one token
        is read, for the last logits)."""
        import torch

        model = self._model
        shared, cache = 0, None
        prefix = self._prefix  # read once: another thread may replace it meanwhile
        if self.reuse_prefix and prefix is not None and hasattr(prefix[1], "crop"):
            previous, previous_cache = prefix
            limit = min(len(previous), len(ctx_ids) - 1)
            while shared < limit and previous[shared] == ctx_ids[shared]:
                shared += 1
            if shared >= MIN_SHARED_PREFIX:
                cache = _fresh_cache(previous_cache)
                cache.crop(shared)
                self.prefix_tokens_reused += shared
            else:
                shared = 0
        mask = torch.ones((1, len(ctx_ids)), dtype=torch.long, device=model.device)
        out = model(input_ids=torch.tensor([ctx_ids[shared:]], device=model.device), attention_mask=mask,
                    past_key_values=cache, use_cache=True)
        out.past_key_values = _as_cache(out.past_key_values)
        if self.reuse_prefix:
            self._prefix = (list(ctx_ids), out.past_key_values)  # only ever read through copies
        return out

    def _continuation(self, context: str, ctx_ids: List[int], answer: str) -> List[int]:
        """The answer's token ids as the model would read them after the context (the
        tokens of context + answer after the context's own, where the context's tokens are
        a prefix; the answer tokenized alone where they merge across the boundary)."""
        whole = self._encode(context + answer)
        if whole[:len(ctx_ids)] == ctx_ids and len(whole) > len(ctx_ids):
            return whole[len(ctx_ids):]
        ids = self._tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(Errors.E545.format(answer=answer))
        return ids


MIN_SHARED_PREFIX = 8  # fewer shared tokens than this are simply read again


def _as_cache(cache):
    """A model's key/value cache as a ``Cache`` object (legacy tuples, as GPT-2 returns them,
    converted)."""
    if isinstance(cache, tuple):
        from transformers import DynamicCache

        return DynamicCache.from_legacy_cache(cache)
    return cache


def _fresh_cache(cache):
    """A copy of a key/value cache that a forward pass may extend, crop or repeat without
    changing the original. A ``DynamicCache`` replaces its tensors rather than writing into
    them, so new lists of the same tensors are enough; other caches are deep-copied."""
    import copy

    from transformers import DynamicCache

    if type(cache) is DynamicCache:
        return DynamicCache.from_legacy_cache(cache.to_legacy_cache())
    return copy.deepcopy(cache)


# ---------------------------------------------------------------------- server
class ServerLLM:
    """An OpenAI-compatible chat completions server (see the module docstring)."""

    def __init__(self, url: str, *, model: str = "default", max_new_tokens: int = 16,
                 api_key_env: Optional[str] = None, timeout: float = 60.0, retries: int = 2,
                 max_concurrency: int = 4) -> None:
        url = url.rstrip("/")
        self.endpoint = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.max_new_tokens = _check_positive_int("max_new_tokens", max_new_tokens)
        self.max_concurrency = _check_positive_int("max_concurrency", max_concurrency)
        self.api_key_env = api_key_env
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(Errors.E544.format(key="timeout", value=timeout, what="a positive number of seconds"))
        self.timeout = float(timeout)
        self.retries = _check_positive_int("retries", retries, least=0)

    def _request(self, prompt: str) -> str:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": 0.0, "max_tokens": self.max_new_tokens}
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise OSError(Errors.E546.format(var=self.api_key_env))
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.endpoint, data=json.dumps(body).encode("utf8"), headers=headers)
        attempt = 0
        while True:
            wait = 0.5 * 2 ** attempt
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read().decode("utf8"))
                return str(payload["choices"][0]["message"]["content"] or "").strip()
            except urllib.error.HTTPError as err:
                detail = err.read()[:300].decode("utf8", "replace")
                # Busy (429) and server errors (5xx) are worth another try; the rest is ours.
                if (err.code != 429 and err.code < 500) or attempt >= self.retries:
                    raise OSError(Errors.E543.format(url=self.endpoint, status=err.code, detail=detail)) from None
                retry_after = err.headers.get("Retry-After") if err.headers else None
                if retry_after and retry_after.strip().isdigit():
                    wait = min(float(retry_after), 30.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
                if attempt >= self.retries:
                    raise OSError(Errors.E542.format(url=self.endpoint, problem=err)) from None
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise OSError(Errors.E543.format(url=self.endpoint, status=200,
                                                 detail=f"unexpected response ({type(err).__name__}: {err})")) from None
            time.sleep(wait)
            attempt += 1

    def generate(self, prompts: Sequence[str]) -> List[str]:
        """The server's answers, in order (up to ``max_concurrency`` requests at a time)."""
        if len(prompts) <= 1 or self.max_concurrency == 1:
            return [self._request(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(prompts))) as pool:
            return list(pool.map(self._request, prompts))


# ---------------------------------------------------------------------- registry
@registry.misc("hybridnlp.LocalLLM.v1")
def create_local_llm(path: str, max_new_tokens: int = 16, batch_size: int = 8, choice_batch: int = 32,
                     reuse_prefix: bool = True) -> LocalCausalLM:
    """A local Hugging Face causal LM directory as a backend (see :class:`LocalCausalLM`).
    batch_size: prompts generated for at once; choice_batch: answers scored at once (each
    holds a copy of the prompt's key/value cache); reuse_prefix: when scoring answers, read
    only the part of a prompt after what it shares with the previous one."""
    return LocalCausalLM(path, max_new_tokens=max_new_tokens, batch_size=batch_size, choice_batch=choice_batch,
                         reuse_prefix=reuse_prefix)


@registry.misc("hybridnlp.ServerLLM.v1")
def create_server_llm(url: str, model: str = "default", max_new_tokens: int = 16,
                      api_key_env: Optional[str] = None, timeout: float = 60.0, retries: int = 2,
                      max_concurrency: int = 4) -> ServerLLM:
    """An OpenAI-compatible chat completions server as a backend (see :class:`ServerLLM`).
    A busy server (429, honouring Retry-After up to 30 s), a server error (5xx) or a dropped
    connection is tried again up to ``retries`` times."""
    return ServerLLM(url, model=model, max_new_tokens=max_new_tokens, api_key_env=api_key_env,
                     timeout=timeout, retries=retries, max_concurrency=max_concurrency)


@registry.misc("hybridnlp.LLM.v1")
def create_llm(model: Optional[str], max_new_tokens: int = 16, server_model: str = "default",
               api_key_env: Optional[str] = None, timeout: float = 60.0, retries: int = 2):
    """A server when ``model`` is a URL (``http://`` or ``https://``), else a local model
    directory; E540 when no model is given."""
    if not model:
        raise ValueError(Errors.E540)
    if str(model).startswith(("http://", "https://")):
        return ServerLLM(str(model), model=server_model, max_new_tokens=max_new_tokens, api_key_env=api_key_env,
                         timeout=timeout, retries=retries)
    return LocalCausalLM(str(model), max_new_tokens=max_new_tokens)
