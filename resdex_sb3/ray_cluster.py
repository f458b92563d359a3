"""Connecting to a Ray cluster for ``--ray``, and the checks that make a bad setup fail at once.

``--ray`` takes ``local`` (start a cluster on this machine for this run, gone when it ends), ``auto`` (the cluster
``ray start --head`` runs on this machine, or the one ``$RAY_ADDRESS`` names) or ``HOST:PORT`` (the head node's
GCS address, as ``ray start --head`` prints it; ``ray://HOST:PORT`` is a Ray Client address). Before any work is
submitted:

- the address must answer (a TCP connection within a few seconds), instead of Ray's own retries for a minute;
- the output folder and the object data must exist on every node, at the same path: a probe file written here
  must be readable by a task on each alive node. Run folders and object data travel through that shared
  filesystem (NFS, a cloud bucket mounted with FUSE, or one machine), never through the object store: a base's
  run folder is read by every later stage, on whatever node that lands on.

Every failure is a :class:`RayClusterError` with a one-line message; the commands print it and exit with 2.
Ray is imported here only when a cluster is asked for, so that commands without ``--ray`` stay light.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

from resdex_sb3.errors import UserError

#: environment variables a Ray worker needs from the driver (workers on other machines, or of a cluster started
#: elsewhere, do not inherit the driver's environment)
FORWARDED_ENV = ("RESDEX_DATA", "RESDEX_ZOO_CONFIG", "RESDEX_TRAIN_ARGS", "RESDEX_RAY_FAULT", "MUJOCO_GL",
                 "PYOPENGL_PLATFORM")  # fmt: skip
CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 120.0
_CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")  # where `ray start --head` leaves its address


class RayClusterError(UserError):
    """A Ray cluster that cannot be used (bad or unreachable address, paths the nodes cannot see); one line."""


class RayCluster:
    """A connection to a Ray cluster for one command.

    :param address: ``local``, ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` (see the module docstring).
    :param num_cpus: CPUs of a ``local`` cluster (default: all of this machine's); ignored otherwise.
    :param env: extra environment variables for every worker (``$RESDEX_DATA``, say), on top of
        :data:`FORWARDED_ENV` as set here.
    """

    def __init__(self, address: str, num_cpus: int | None = None, env: dict[str, str] | None = None) -> None:
        self.address = self.check_address(address)
        self.num_cpus = num_cpus
        self.env = {**{k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}, **(env or {})}
        self.dashboard_url: str | None = None
        self._started = False

    # ------------------------------------------------------------------ before Ray
    @staticmethod
    def check_address(address: str) -> str:
        """``address`` when it is well formed and (for ``auto``, ``HOST:PORT``) something answers there; else a
        :class:`RayClusterError` naming what to do."""
        address = address.strip()
        if address == "local":
            return address
        if address == "auto":
            target = os.environ.get("RAY_ADDRESS") or (
                _CURRENT_CLUSTER.read_text().strip() if _CURRENT_CLUSTER.is_file() else "")  # fmt: skip
            if not target or target == "auto":
                raise RayClusterError("--ray auto: no Ray cluster is running on this machine ($RAY_ADDRESS is unset "
                                      "and `ray start --head` left no address); start one with `ray start --head`, "
                                      "name one with --ray HOST:PORT, or use --ray local")  # fmt: skip
            RayCluster._answers(target, "--ray auto (the cluster `ray start --head` or $RAY_ADDRESS names)")
            return address
        RayCluster._answers(address, f"--ray {address}")
        return address

    @staticmethod
    def _answers(address: str, what: str) -> None:
        bare = address.removeprefix("ray://")
        host, sep, port = bare.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RayClusterError(f"{what}: {address!r} is not a Ray address; give local, auto, HOST:PORT or "
                                  "ray://HOST:PORT (`ray start --head` prints the address)")  # fmt: skip
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise RayClusterError(f"{what}: no Ray cluster answers at {host}:{port} ({reason}); start its head with "
                                  "`ray start --head`, or use --ray local") from None  # fmt: skip

    # ------------------------------------------------------------------ Ray
    def connect(self) -> None:
        """Start (``local``) or join the cluster; workers get :attr:`env`. Logs of the workers reach this
        process's output."""
        import ray

        kwargs: dict[str, Any] = {"runtime_env": {"env_vars": self.env}} if self.env else {}
        if self.address == "local":
            kwargs.update(num_cpus=self.num_cpus, include_dashboard=None)
        try:
            context = ray.init(address=self.address, log_to_driver=True, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RayClusterError(f"--ray {self.address}: cannot join the Ray cluster ({first})") from None
        self._started = True
        url = getattr(context, "dashboard_url", None)
        self.dashboard_url = f"http://{url}" if url and not str(url).startswith("http") else (url or None)

    def resources(self) -> dict[str, float]:
        """The cluster's total resources (``CPU``, ``GPU``, ...)."""
        import ray

        return dict(ray.cluster_resources())

    def check_shared(self, paths: dict[str, Path]) -> None:
        """Every alive node sees every folder of ``paths`` (what -> absolute folder) at the same path: a probe file
        written here is read back by a task pinned to each node. Raises :class:`RayClusterError` naming the first
        node and path that fail."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from envs.files import atomic_write_bytes

        token = uuid.uuid4().hex
        probes = {}
        for what, folder in paths.items():
            probe = folder / f".ray-probe-{token}"
            try:
                atomic_write_bytes(probe, token.encode())
            except OSError as err:
                raise RayClusterError(f"{what} {folder} is not writable here ({err.strerror or err})") from None
            probes[what] = probe

        @ray.remote(num_cpus=0, max_retries=0)
        def read_probes(probes: dict[str, str], token: str) -> dict[str, str]:
            problems = {}
            for what, probe in probes.items():
                try:
                    if Path(probe).read_text() != token:
                        problems[what] = "another file of that name"
                except OSError as err:
                    problems[what] = err.strerror or type(err).__name__
            return problems

        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            refs = {n["NodeManagerAddress"]: read_probes.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                {w: str(p) for w, p in probes.items()}, token) for n in nodes}  # fmt: skip
            for node, ref in refs.items():
                try:
                    problems = ray.get(ref, timeout=PROBE_TIMEOUT_S)
                except ray.exceptions.GetTimeoutError:
                    raise RayClusterError(f"node {node} did not answer the storage probe within {PROBE_TIMEOUT_S:.0f}"
                                          " s") from None  # fmt: skip
                for what, reason in problems.items():
                    raise RayClusterError(f"node {node} cannot read {what} {paths[what]} ({reason}): --out and the "
                                          "object data must be on a filesystem every node mounts at the same path")
        finally:
            for probe in probes.values():
                probe.unlink(missing_ok=True)

    def shutdown(self) -> None:
        """Leave the cluster (a ``local`` one stops)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
