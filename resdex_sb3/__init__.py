"""resdex_sb3: ResDex on Stable-Baselines3 — policies, training, distillation, evaluation and their CLIs."""

__version__ = "0.1.0"
