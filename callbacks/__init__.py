"""SB3 callbacks for batched grasping runs (usable from zoo YAML as ``callbacks.<Name>``)."""

from callbacks.atomic_checkpoint import AtomicCheckpoint
from callbacks.batched_timeout_bootstrap import BatchedTimeoutBootstrap
from callbacks.kl_adaptive_lr import KLAdaptiveLR
from callbacks.split_success_eval import SplitSuccessEval
from callbacks.stage_switch import StageSwitch
from callbacks.training_stats import TrainingStats
from callbacks.update_threads import UpdateThreads

__all__ = ["AtomicCheckpoint", "BatchedTimeoutBootstrap", "KLAdaptiveLR", "SplitSuccessEval", "StageSwitch",
           "TrainingStats", "UpdateThreads"]
