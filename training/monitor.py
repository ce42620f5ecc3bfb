"""Warnings about a run that trains but learns nothing useful."""

from __future__ import annotations


class CollapseMonitor:
    """Reports a discriminator that wins outright (the encoder/generator get no signal) or that
    has stopped telling the two paths apart while its loss sits at log 2 (it learns nothing),
    for `patience` consecutive log intervals."""

    WIN_ACCURACY = 0.99
    CHANCE_BAND = (0.45, 0.55)

    def __init__(self, patience: int = 20):
        self.patience = patience
        self.won = 0
        self.blind = 0

    def update(self, means: dict[str, float]) -> str | None:
        accs = [means[k] for k in ("disc/acc_xi", "disc/acc_gamma") if k in means]
        if not accs:
            return None
        self.won = self.won + 1 if min(accs) >= self.WIN_ACCURACY else 0
        lo, hi = self.CHANCE_BAND
        self.blind = self.blind + 1 if all(lo <= a <= hi for a in accs) else 0
        if self.won >= self.patience:
            return (
                f"discriminators collapsed: accuracy {min(accs):.3f} for {self.won} intervals, "
                "the model gets no adversarial signal"
            )
        if self.blind >= self.patience:
            return (
                f"discriminators at chance ({accs}) for {self.blind} intervals: they learn nothing"
            )
        return None
