import os

# no machine here reaches a hub: without these, a missing local model costs a minute of retries (tox sets them too)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# cached FID statistics of the tests' mirrors go to a folder of this session, not ~/.cache
os.environ.setdefault("HERMES_BENCH_CACHE", __import__("tempfile").mkdtemp(prefix="hermes-bench-cache-"))

import base64
import io
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from hermes_bench.embedded.tiny import build_tiny_emu3, build_tiny_janus, build_tiny_showo
from hermes_bench.judges import read_scene
from hermes_bench.world import language
from hermes_bench.world.scene import sample_scene


@pytest.fixture(scope="session")
def tiny_janus(tmp_path_factory) -> Path:
    """A tiny Janus saved with save_pretrained, loaded back through the real from_pretrained path."""
    return build_tiny_janus(tmp_path_factory.mktemp("tiny-janus"), seed=1)


@pytest.fixture(scope="session")
def tiny_emu3(tmp_path_factory) -> Path:
    """A tiny Emu3 (tokenizer with visual tokens, processor, VQ) saved with save_pretrained."""
    return build_tiny_emu3(tmp_path_factory.mktemp("tiny-emu3"), seed=1)


@pytest.fixture(scope="session")
def tiny_showo(tmp_path_factory) -> Path:
    """A tiny Show-o bundle in the official layout (showo/, magvitv2/, tokenizer/)."""
    return build_tiny_showo(tmp_path_factory.mktemp("tiny-showo"), seed=1)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny BERT (random weights, a word-level vocabulary) saved and loaded through from_pretrained."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("bert")
    words = sorted({w for s in (language.caption(sample_scene(random.Random(i))) for i in range(200))
                    for w in s.replace(",", " ").split()} | {"yes", "no", "it", "is", "red", "blue", "maybe"})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]").save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    return folder


def shapes_vlm_answer(image: Image.Image, question: str) -> str:
    """'Yes' when an object the detector sees has a colour the question names."""
    return "Yes" if any(o.color in question for o in read_scene(image).objects) else "No"


class ChatCompletions(BaseHTTPRequestHandler):
    requests: list[dict]

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        if self.path != "/v1/chat/completions" or body["model"] != "shapes-vlm":
            self._send(404, {"error": {"message": f"The model {body['model']} does not exist", "type": "invalid"}})
            return
        parts = body["messages"][-1]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        image = Image.open(io.BytesIO(base64.b64decode(url.removeprefix("data:image/png;base64,"))))
        text = " ".join(p["text"] for p in parts if p["type"] == "text")
        self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": shapes_vlm_answer(image, text)}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def openai_server(monkeypatch):
    """A small VLM behind a real API: a local server that speaks the OpenAI chat completions protocol (model
    'shapes-vlm') and reads the images it is sent with the shapes world's detector. OPENAI_BASE_URL points to it;
    `.requests` holds what it was sent, `.answer(image, question)` what it answers."""
    handler = type("Handler", (ChatCompletions,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    yield SimpleNamespace(requests=handler.requests, answer=shapes_vlm_answer)
    httpd.shutdown()


@pytest.fixture(scope="session")
def fid_weights(tmp_path_factory) -> Path:
    from hermes_bench.detectors.tiny import build_random_fid_inception

    return build_random_fid_inception(tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth")


@pytest.fixture(scope="session")
def coco_mirror(tmp_path_factory) -> Path:
    """A --data-dir mirror holding sayakpaul/coco-30-val-2014 (8 rows of shapes-world scenes and captions)."""
    from hub_mirror import build_coco

    root = tmp_path_factory.mktemp("coco-mirror")
    build_coco(root)
    return root


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A tiny random CLIP whose scores on the mirror's captions are positive on average, negative for some."""
    from hermes_bench.detectors.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip"), seed=6, max_positions=64)  # seed 6: mixed signs
