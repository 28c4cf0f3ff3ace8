import os
from pathlib import Path

RUN = Path(os.environ.get("PARITY_RUN", "/tmp/parity/run"))
import torch
a = torch.load(RUN / "ours.pt", weights_only=False); b = torch.load(RUN / "official.pt", weights_only=False)
print("ids equal:", torch.equal(a["ids"], b["ids"]))
print("logits max diff:", (a["logits"] - b["logits"]).abs().max().item())
print("codes equal:", torch.equal(a["codes"], b["codes"]))
print("decoded max diff:", (a["decoded"] - b["decoded"]).abs().max().item())
print("maskgit sampled equal:", torch.equal(a["sampled"], b["sampled"]))
print("greedy answers equal:", a["answers"] == b["answers"], "batched equal:", a["batched"] == b["answers"])
print("dpo ours", a["dpo"].tolist(), "official masked-only", b["dpo"], "official incl soi/eoi", b["dpo_with_soi_eoi"])
