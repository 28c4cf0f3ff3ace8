"""Our side, step 1: build a tiny bundle, fixed inputs (pixels, masks), and our outputs."""
import json, os, shutil, sys
from pathlib import Path
import torch
from PIL import Image
from hermes_bench.embedded.tiny import build_tiny_showo
from hermes_bench.models import load_model
from hermes_bench.models.showo import image_transform
from hermes_bench.models.showo_prompting import dpo_image_mask, t2i_ids, t2i_attention_mask, maskgit_generate
from hermes_bench.align.data import shapes_records

out = Path(os.environ.get("PARITY_RUN", "/tmp/parity/run")); shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
weights = sys.argv[1] if len(sys.argv) > 1 else "pytorch_model.safetensors"
build_tiny_showo(out / "bundle", seed=3, weights=weights)
m = load_model(str(out / "bundle"), "cpu")
images = [r.image for r in shapes_records(2, seed=11)]
pixels = torch.stack([image_transform(im, 32) for im in images])
codes = m.magvit.encode(pixels)
decoded = m.decode_pixels(codes)
prompts = ["a red circle above two blue squares", "", "a green triangle"]
ids = t2i_ids(m.tokenizer(prompts)["input_ids"], torch.full((3, 16), m.vocab.mask), m.vocab)
mask = t2i_attention_mask(ids, m.vocab)
with torch.no_grad():
    logits = m.logits(ids, mask)
gen = torch.Generator().manual_seed(0)
cond = t2i_ids(m.tokenizer(prompts[:1] * 2)["input_ids"], torch.full((2, 16), m.vocab.mask), m.vocab)
uncond = t2i_ids(m.tokenizer(["", ""])["input_ids"], torch.full((2, 16), m.vocab.mask), m.vocab)
with torch.no_grad():
    sampled = maskgit_generate(m.logits, cond, uncond, t2i_attention_mask(torch.cat([cond, uncond]), m.vocab), m.vocab,
                               1.75, 8, generator=gen)
questions = ["What is in the image?", "Is there a red circle? Please answer yes or no."]
answers = [m.answer_ids([q], [[im]], max_new_tokens=12)[0] for q, im in zip(questions, images)]
batched = m.answer_ids(questions, [[im] for im in images], max_new_tokens=12)
key_mask = torch.stack([dpo_image_mask("rec-1 round 1 seed 0", 16), dpo_image_mask("rec-2 round 1 seed 0", 16)])
dpo = m.image_logprobs(["a red circle", "two blue squares"], codes, keys=["rec-1 round 1 seed 0", "rec-2 round 1 seed 0"])
texts = prompts + ["", "a red circle", "two blue squares"] + ["USER: \n" + q + " ASSISTANT:" for q in questions]
text_ids = {t: m.tokenizer(t)["input_ids"] for t in texts}
torch.save({"text_ids": text_ids, "llm_vocab_size": m.config["llm_vocab_size"], "pixels": pixels, "codes": codes, "decoded": decoded, "prompts": prompts, "ids": ids, "logits": logits,
            "sampled": sampled, "questions": questions, "answers": answers, "batched": batched, "dpo_mask": key_mask,
            "dpo": dpo.detach(), "vocab": vars(m.vocab)}, out / "ours.pt")
print("ours ready", sampled.tolist(), answers)
