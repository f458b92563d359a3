"""SB3 callbacks that a zoo YAML names as ``callbacks.<Name>`` (rl-zoo builds them from the preset).

Layering: ``callbacks`` sits on top of ``resdex_sb3`` (periodic evaluation uses its evaluation protocol and run
folder), and ``resdex_sb3`` never imports ``callbacks``: the experiment manager hands each callback its run
through ``bind_run`` (see ``resdex_sb3.zoo_manager``), so no package imports one that imports it back.
"""

from callbacks.batched_timeout_bootstrap import BatchedTimeoutBootstrap
from callbacks.kl_adaptive_lr import KLAdaptiveLR
from callbacks.split_success_eval import SplitSuccessEval
from callbacks.training_stats import TrainingStats
from callbacks.update_threads import UpdateThreads

__all__ = ["BatchedTimeoutBootstrap", "KLAdaptiveLR", "SplitSuccessEval", "TrainingStats", "UpdateThreads"]
