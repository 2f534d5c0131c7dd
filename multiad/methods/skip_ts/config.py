"""Skip-TS's settings: the reference code's values by default (its schedule — 200 epochs,
batch 16, Adam lr 0.005, betas (0.5, 0.999) — is the method's reference schedule in
``multiad.methods``). Where the paper's equations and the code differ, both forms are
switches (explained on the book's interpretations page): L_sim as the code computes it
(which produced the published numbers; scale-free either way), L_mac as the paper prints it
(Eq. 4: on the layer maps, which lie in [0, 2] whatever the backbone; the code's form
compares feature MSEs, whose scale is the backbone's — on the offline EfficientNet-Lite0,
β·L_mac is 1.8× L_sim at the first epoch and L_sim ends 44 % higher after 8 epochs,
measured, `book/interpretations`)."""

from __future__ import annotations

from dataclasses import dataclass

from multiad.config import RunConfig

SIMILARITIES = ("flattened", "position")
MACS = ("maps", "mse_gaps", "none")


@dataclass
class SkipTSConfig:
    """Skip-TS (Liu, Jiao, Lu & Chen; reference Arktis2022/Skip-TS)."""

    decoder_blocks: tuple[int, ...] = (3, 4, 6)  # per decoder stage D3, D2, D1 (reference)
    skip: bool = True  # the skip connections (§III-C; false: the paper's "DRKD w/o SC")
    # L_sim: "flattened" = 1 − cos of each image's whole feature map as one vector (the
    # code); "position" = the mean of Eq. 1's per-position map (Eqs. 2–3 as printed)
    similarity: str = "flattened"
    # L_mac: "maps" = Eq. 4, squared differences of the upsampled layer maps; "mse_gaps" =
    # |MSE at one scale − MSE at the next| for the three stage pairs (the code); "none"
    mac: str = "maps"
    alpha: float = 1.0  # weight of L_sim (Eq. 5)
    beta: float = 0.05  # weight of L_mac (Eq. 5)
    sigma: float = 4.0  # Gaussian smoothing of M_ano (§IV-F)

    def resolved(self, cfg: RunConfig) -> SkipTSConfig:  # noqa: ARG002
        """Checked."""
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"skip_ts.similarity {self.similarity!r} unknown; use one of "
                             f"{', '.join(SIMILARITIES)}")
        if self.mac not in MACS:
            raise ValueError(f"skip_ts.mac {self.mac!r} unknown; use one of {', '.join(MACS)}")
        if len(self.decoder_blocks) != 3 or min(self.decoder_blocks) < 1:
            raise ValueError("skip_ts.decoder_blocks: three stages of one or more blocks, "
                             f"got {self.decoder_blocks}")
        return self
