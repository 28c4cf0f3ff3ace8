"""The official side (transformers 4.44, the official Show-o code at 45a5a2d), on our tiny bundle's files."""
import json, os, sys
sys.path.insert(0, os.environ["OFFICIAL_CODE"])  # Show-o at 45a5a2d: models/, training/
from pathlib import Path
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import AutoTokenizer
from models import Showo, VQGANEncoder, VQGANDecoder, LFQuantizer, MAGVITv2
from models.sampling import cosine_schedule
from training.prompting_utils import UniversalPrompting, create_attention_mask_predict_next, create_attention_mask_for_mmu

run = Path(os.environ.get("PARITY_RUN", "/tmp/parity/run")); B = run / "bundle"
ours = torch.load(run / "ours.pt", weights_only=False)
cfg = json.loads((B / "showo" / "config.json").read_text())
official_cfg = dict(cfg, llm_model_path=str(B / "tokenizer"), load_from_showo=True)
(run / "showo_official").mkdir(exist_ok=True)
(run / "showo_official" / "config.json").write_text(json.dumps(official_cfg))
for f in (B / "showo").iterdir():
    if f.name != "config.json":
        (run / "showo_official" / f.name).write_bytes(f.read_bytes())
model = Showo.from_pretrained(str(run / "showo_official")).eval()
vq_cfg = json.loads((B / "magvitv2" / "config.json").read_text())["encoder"]
vq = MAGVITv2.__new__(MAGVITv2); torch.nn.Module.__init__(vq)
vq.encoder = VQGANEncoder(**vq_cfg); vq.decoder = VQGANDecoder(**vq_cfg); vq.quantize = LFQuantizer(codebook_dim=vq_cfg["z_channels"])
vq.load_state_dict(load_file(B / "magvitv2" / "pytorch_model.safetensors")); vq.eval()
class StubTokenizer:
    """Text ids precomputed by the same tokenizer file (this venv's old `tokenizers` cannot read it); the added
    tokens get ids the way a real tokenizer gives them."""
    def __init__(self, table, size):
        self.table, self.size, self.added = table, size, {}
        self.bos_token_id = self.eos_token_id = 0
        self.pad_token_id = None
    def add_special_tokens(self, d):
        self.pad_token_id = self._add(d["pad_token"])
    def add_tokens(self, tokens):
        for t in tokens: self._add(t)
    def _add(self, t):
        if t not in self.added: self.added[t] = self.size + len(self.added)
        return self.added[t]
    def convert_tokens_to_ids(self, tokens):
        return self.added[tokens] if isinstance(tokens, str) else [self.added[t] for t in tokens]
    def __len__(self):
        return self.size + len(self.added)
    def __call__(self, texts):
        return {"input_ids": [list(self.table[t]) for t in texts]}
tok = StubTokenizer(ours["text_ids"], ours["llm_vocab_size"])
up = UniversalPrompting(tok, max_text_len=128, special_tokens=("<|soi|>", "<|eoi|>", "<|sov|>", "<|eov|>", "<|t2i|>", "<|mmu|>", "<|t2v|>", "<|v2v|>", "<|lvg|>"), ignore_id=-100, cond_dropout_prob=0.0)
sp = {k: int(v) for k, v in up.sptids_dict.items()}
res = {}
with torch.no_grad():
    codes = vq.get_code(ours["pixels"]); res["codes"] = codes
    res["decoded"] = vq.decode_code(codes)
    image_tokens = torch.full((3, 16), model.config.mask_token_id)
    ids, _ = up((list(ours["prompts"]), image_tokens), "t2i_gen")
    res["ids"] = ids
    mask = create_attention_mask_predict_next(ids, pad_id=sp["<|pad|>"], soi_id=sp["<|soi|>"], eoi_id=sp["<|eoi|>"], rm_pad_in_image=True)
    res["logits"] = model(ids, attention_mask=mask)
    config = OmegaConf.create({"model": {"showo": {"num_vq_tokens": 16, "num_new_special_tokens": 10, "llm_vocab_size": cfg["llm_vocab_size"]}}, "dataset": {"preprocessing": {"max_seq_length": 128}}})
    cond, _ = up(([ours["prompts"][0]] * 2, torch.full((2, 16), model.config.mask_token_id)), "t2i_gen")
    uncond, _ = up((["", ""], torch.full((2, 16), model.config.mask_token_id)), "t2i_gen")
    m2 = create_attention_mask_predict_next(torch.cat([cond, uncond]), pad_id=sp["<|pad|>"], soi_id=sp["<|soi|>"], eoi_id=sp["<|eoi|>"], rm_pad_in_image=True)
    gen = torch.Generator().manual_seed(0)
    res["sampled"] = model.t2i_generate(input_ids=cond, uncond_input_ids=uncond, attention_mask=m2, guidance_scale=1.75, temperature=1.0, timesteps=8, noise_schedule=cosine_schedule, generator=gen, config=config)
    answers = []
    for i, q in enumerate(ours["questions"]):
        image_ids = codes[i:i + 1] + len(tok)
        q_ids = torch.tensor(tok(["USER: \n" + q + " ASSISTANT:"])["input_ids"])
        inp = torch.cat([torch.tensor([[sp["<|mmu|>"], sp["<|soi|>"]]]), image_ids, torch.tensor([[sp["<|eoi|>"], sp["<|sot|>"]]]), q_ids], 1).long()
        am = create_attention_mask_for_mmu(inp, eoi_id=sp["<|eoi|>"])
        toks = model.mmu_generate(inp, attention_mask=am, max_new_tokens=12, top_k=1, eot_token=sp["<|eot|>"])
        answers.append([int(t) for t in toks])
    res["answers"] = answers
    # HermesFlow's loss_for_unidpo, one record at a time, under our DPO mask
    dpo, dpo_masked_only = [], []
    for i, cap in enumerate(["a red circle", "two blue squares"]):
        img = codes[i:i + 1] + len(tok)
        msk = ours["dpo_mask"][i:i + 1]
        inp_img = torch.where(msk, model.config.mask_token_id, img)
        lab_img = torch.where(msk, img, -100)
        inp, _, lab = up(([cap], inp_img, lab_img), "t2i")
        am = create_attention_mask_predict_next(inp, pad_id=sp["<|pad|>"], soi_id=sp["<|soi|>"], eoi_id=sp["<|eoi|>"], rm_pad_in_image=True)
        from types import MethodType
        lp_t2i, _ = Showo.loss_for_unidpo(model, inp, attention_mask=am, labels=torch.cat([lab, lab]), batch_size_t2i=1, batch_size_mmu=1, max_seq_length=128) if hasattr(Showo, "loss_for_unidpo") else (None, None)
        logits = model(inp, attention_mask=am)
        lg, lb = logits[0, 129:], lab[0, 129:]
        keep = lb != -100
        full = F.log_softmax(lg[keep], -1).gather(1, lb[keep][:, None]).sum()
        image_only = lb.clone(); image_only[0] = -100; image_only[-1] = -100
        k2 = image_only != -100
        dpo.append(float(full)); dpo_masked_only.append(float(F.log_softmax(lg[k2], -1).gather(1, image_only[k2][:, None]).sum()))
    res["dpo_with_soi_eoi"] = dpo; res["dpo"] = dpo_masked_only
torch.save(res, run / "official.pt")
print("official ready", res["sampled"].tolist(), answers)
