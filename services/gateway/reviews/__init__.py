"""Clinicians review AI answers: marked correct or corrected, per-model figures, and the
corrections that become the next fine-tune's data."""
