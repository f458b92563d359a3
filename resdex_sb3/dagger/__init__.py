"""DAgger distillation of the hyper-policy into the vision student, on imitation's ``DAggerTrainer`` and ``BC``.

imitation (1.0.1) must be installed separately: ``pip install --no-deps imitation==1.0.1`` plus its real imports
``datasets`` and ``jsonpickle`` (its declared pins conflict with SB3 2.9). What is replaced, through its own
extension points, and why:

- demonstrations: imitation writes one file per finished episode and retrains on everything gathered so far;
  ResDex keeps a ring buffer of the last few steps of every env. :class:`RingBufferDAggerTrainer` and
  :class:`BufferingTrajectoryCollector` keep that ring buffer in memory (``benchmarks/dagger_file_writing.py``
  measures the file path);
- loss: BC's default is a Gaussian negative log-likelihood with an entropy bonus; ResDex regresses the
  student's deterministic action on the expert's, :class:`DeterministicMSELoss`;
- beta: the student acts from the first step (:class:`ConstantBetaSchedule` at 0), as ResDex.
"""

import importlib.util

if importlib.util.find_spec("imitation") is None:  # a plain `pip install -e .` cannot install it (see above)
    raise ModuleNotFoundError("distillation needs imitation 1.0.1, which pip cannot install beside SB3 2.9 with its "
                              "own pins: run `pip install --no-deps imitation==1.0.1` (make install does)")  # fmt: skip

from resdex_sb3.dagger.buffering_collector import BufferingTrajectoryCollector  # noqa: E402
from resdex_sb3.dagger.constant_beta_schedule import ConstantBetaSchedule  # noqa: E402
from resdex_sb3.dagger.deterministic_mse_loss import DeterministicMSELoss  # noqa: E402
from resdex_sb3.dagger.privileged_expert_policy import PrivilegedExpertPolicy  # noqa: E402
from resdex_sb3.dagger.ring_buffer_dagger_trainer import RingBufferDAggerTrainer  # noqa: E402
from resdex_sb3.dagger.step_logger import StepLogger  # noqa: E402
from resdex_sb3.dagger.transition_ring_buffer import TransitionRingBuffer  # noqa: E402

__all__ = ["BufferingTrajectoryCollector", "ConstantBetaSchedule", "DeterministicMSELoss", "PrivilegedExpertPolicy",
           "RingBufferDAggerTrainer", "StepLogger", "TransitionRingBuffer"]
