"""Warnings about a run that trains but learns nothing useful."""

from __future__ import annotations


class CollapseMonitor:
    """Reports, for `patience` consecutive log intervals, a discriminator that wins outright (the
    encoder/generator get no signal), one that has stopped telling the two paths apart while its
    loss sits at log 2 (it learns nothing), a loss term that drowns another at the generator, or
    an image reconstruction term that stays far above its lowest (the generator lost what it
    drew, as when it draws blank images), or a generator that ignores the codes (it draws the
    same image, often a blank one, whatever z and e say), or one that stopped using e (every
    transfer alike) after it had."""

    WIN_ACCURACY = 0.99
    CHANCE_BAND = (0.45, 0.55)
    # The paper's discriminators (d_xi, d_gamma) estimate a divergence: at chance they are blind.
    ESTIMATORS = ("disc/acc_xi", "disc/acc_gamma")
    # The transfer adversary d_tau is at chance when its job is done; only its win is a fault.
    ADVERSARIES = ("disc/acc_tau",)

    # One loss term sending this many times another's gradient norm to the generator drowns it.
    DOMINANCE = 100.0
    # The image reconstruction term (a variant logs one of these) and how far above its lowest
    # it may stay: adding a term to a trained model sets it back for a few hundred steps (up to
    # 6 times, recovered within 15 intervals); a blank generator stays there.
    RECONSTRUCTIONS = ("loss/recon_x_u", "loss/recon_x")
    SETBACK = 2.0
    # The reconstruction's gradient norm on the encoders over its norm on the generator. Healthy
    # digits runs stay above 0.025 from step 200 (mostly 0.1-1.5); a generator that draws blank
    # images whatever its codes sends them 2e-4 to 9e-4 (one first leg that recovered did for 4 intervals).
    IGNORED_CODES = 1e-3
    # reach/e (training_step.TrainStep._code_reach) over its highest in this process. The wide
    # 64x64 second leg stayed at .57-1 of its highest from step 2,200 to 3,200 but at 3,000 and
    # 3,050 (.23, .46), where its transfers went grey for a while.
    REACH_DROP = 1 / 3

    def __init__(self, patience: int = 20):
        self.patience = patience
        self.won = 0
        self.blind = 0
        self.dominated = 0
        self.lowest = float("inf")
        self.set_back = 0
        self.ignored = 0
        self.highest_reach = 0.0
        self.lost_e = 0

    def update(self, means: dict[str, float]) -> str | None:
        checks = (
            self._discriminators(means),
            self._dominance(means),
            self._setback(means),
            self._ignored_codes(means),
            self._lost_e(means),
        )
        return "; ".join(w for w in checks if w) or None

    def _setback(self, means: dict[str, float]) -> str | None:
        """Reports an image reconstruction term that stays SETBACK times above its lowest."""
        key = next((k for k in self.RECONSTRUCTIONS if k in means), None)
        if key is None:
            return None
        value = means[key]
        lowest = self.lowest = min(self.lowest, value)
        self.set_back = self.set_back + 1 if value >= self.SETBACK * lowest else 0
        if self.set_back >= self.patience:
            return (
                f"{key} has stayed at {value / lowest:.3g} times its lowest ({lowest:.5g}) for "
                f"{self.set_back} intervals: the generator lost what it drew (look at the grids)"
            )
        return None

    def _ignored_codes(self, means: dict[str, float]) -> str | None:
        """Reports a reconstruction that barely reaches the encoders through the generator."""
        on_generator = means.get("grad/recon_x/generator", 0.0)
        on_encoders = [v for k, v in means.items() if k.startswith("grad/recon_x/encoder")]
        if on_generator <= 0 or not on_encoders:  # not measured in this interval
            return None
        share = max(on_encoders) / on_generator
        self.ignored = self.ignored + 1 if share < self.IGNORED_CODES else 0
        if self.ignored >= self.patience:
            return (
                f"the reconstruction sends the encoders {share:.2g} of its gradient on the "
                f"generator for {self.ignored} intervals: the generator ignores z and e (look at "
                "the grids; a smaller objective.adversarial_balance may let it learn)"
            )
        return None

    def _lost_e(self, means: dict[str, float]) -> str | None:
        """Reports e's reach staying under REACH_DROP of its highest: G stopped using e."""
        reach = means.get("reach/e")
        if reach is None:  # not measured in this interval
            return None
        highest = self.highest_reach = max(self.highest_reach, reach)
        self.lost_e = self.lost_e + 1 if reach < self.REACH_DROP * highest else 0
        if self.lost_e >= self.patience:
            return (
                f"reach/e has stayed at {reach / highest:.2g} of its highest ({highest:.3g}) for "
                f"{self.lost_e} intervals: the generator stopped using e (look at the transfers)"
            )
        return None

    def _dominance(self, means: dict[str, float]) -> str | None:
        """Reports a loss term whose gradient on G drowns another's (`grad/<term>/generator`)."""
        norms = {
            k.split("/")[1]: v
            for k, v in means.items()
            if k.startswith("grad/") and k.endswith("/generator") and v > 0
        }
        if not norms:  # not measured in this interval
            return None
        top, low = max(norms, key=norms.__getitem__), min(norms, key=norms.__getitem__)
        ratio = norms[top] / norms[low]
        self.dominated = self.dominated + 1 if ratio > self.DOMINANCE else 0
        if self.dominated >= self.patience:
            return (
                f"{top} sends {ratio:.3g} times the gradient of {low} to the generator for "
                f"{self.dominated} intervals: {low} barely acts"
            )
        return None

    def _discriminators(self, means: dict[str, float]) -> str | None:
        estimators = [means[k] for k in self.ESTIMATORS if k in means]
        adversaries = [means[k] for k in self.ADVERSARIES if k in means]
        accs = estimators + adversaries
        if not accs:
            return None
        won = any(a >= self.WIN_ACCURACY for a in adversaries) or (
            bool(estimators) and min(estimators) >= self.WIN_ACCURACY
        )
        self.won = self.won + 1 if won else 0
        lo, hi = self.CHANCE_BAND
        blind = bool(estimators) and all(lo <= a <= hi for a in estimators)
        self.blind = self.blind + 1 if blind else 0
        if self.won >= self.patience:
            return (
                f"discriminators collapsed: accuracy {max(accs):.3f} for {self.won} intervals, "
                "the model gets no adversarial signal"
            )
        if self.blind >= self.patience:
            return (
                f"discriminators at chance ({accs}) for {self.blind} intervals: they learn nothing"
            )
        return None
