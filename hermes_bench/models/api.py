"""A judge behind an OpenAI-compatible chat completions API: the paper's GPT-4o judge, or any VLM a server such
as vLLM serves. Understanding only; `--judge openai:MODEL`, with the endpoint and key from OPENAI_BASE_URL and
OPENAI_API_KEY."""

from __future__ import annotations

import base64
import io
import re
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import IMAGE_PLACEHOLDER
from hermes_bench.storage import digest

PREFIX = "openai:"
# The paper told its GPT-4o judge to be strict about blur and missing objects.
# Lower case, no punctuation: DPG-Bench counts only an exact "yes", as its reference judge (mPLUG) answers.
STRICT_JUDGE = ("You judge images made by a text-to-image model. Answer the question about the image strictly: an "
                "object that is blurred, malformed or cut off does not count as present. Reply with the answer "
                "only, in lower case, without punctuation.")


def redact(text: str) -> str:
    """The text with credentials in URLs (user:password@) and API keys (sk-...) blanked out."""
    text = re.sub(r"(?<=://)[^/@\s]+@", "***@", text)
    return re.sub(r"\b(sk|key|token)-[A-Za-z0-9_\-]{6,}", r"\1-***", text)


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def message_content(prompt: str, images: list[Image.Image]) -> list[dict]:
    """The prompt as chat content parts, each image where the prompt places it (missing placeholders go first)."""
    prompt = IMAGE_PLACEHOLDER * max(len(images) - prompt.count(IMAGE_PLACEHOLDER), 0) + prompt
    texts = prompt.split(IMAGE_PLACEHOLDER)
    parts = [{"type": "text", "text": texts[0]}] if texts[0] else []
    for image, text in zip(images, texts[1:], strict=True):
        parts.append({"type": "image_url", "image_url": {"url": _data_url(image)}})
        if text:
            parts.append({"type": "text", "text": text})
    return parts


class APIModel:
    """Answers questions about images through the API, greedily (temperature 0), several requests at a time."""

    def __init__(self, spec: str, concurrency: int = 8, max_retries: int = 2, system: str = STRICT_JUDGE) -> None:
        try:
            import openai
        except ImportError:
            raise HermesBenchError(f"--judge {spec} needs the openai package: pip install 'hermes-bench[api]'") \
                from None
        self.name, self.model = spec, spec.removeprefix(PREFIX)
        try:
            self.client = openai.OpenAI(max_retries=max_retries)
        except openai.OpenAIError as err:
            raise HermesBenchError(f"--judge {spec}: {redact(str(err))} (set OPENAI_API_KEY; a local server "
                                   "without keys takes any value)") from None
        self.errors = openai.OpenAIError
        self.concurrency, self.system = concurrency, system
        self.fingerprint = digest(spec, redact(str(self.client.base_url)), system)

    def _ask(self, prompt: str, images: list[Image.Image], max_new_tokens: int) -> str:
        messages = [{"role": "system", "content": self.system},
                    {"role": "user", "content": message_content(prompt, images)}]
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0,
                                                        max_tokens=max_new_tokens)
        except self.errors as err:
            detail = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
            raise HermesBenchError(f"--judge {self.name}: the API at {redact(str(self.client.base_url))} failed "
                                   f"({redact(detail)}): "
                                   "check OPENAI_BASE_URL, OPENAI_API_KEY and the model name") from None
        return reply.choices[0].message.content or ""

    def answer(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int = 16) -> list[str]:
        """One answer per prompt, in order; prompt i mentions its images with IMAGE_PLACEHOLDER."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._ask, prompts, images, [max_new_tokens] * len(prompts)))
