"""A private one-node SLURM cluster with accounting, for tests/test_slurm.py (`make test-slurm`).

Debian's packages (slurm-wlm 22.05, slurmdbd, munge, mariadb-server; envs/install-slurm.sh
installs them) run as plain root processes without systemd, every one of them in the
foreground as a child of this process: MariaDB on a fresh, small data directory, munged,
slurmdbd, slurmctld and slurmd.  Everything they keep (configuration, munge key and socket,
database, state, spool, logs) is in one new folder under /tmp; every port is a free one
chosen at start, so the cluster shares nothing with the machine's own services or with
another copy of itself.  Clients find it through ``SLURM_CONF`` (``env``).

``stop`` cancels the cluster's jobs, ends the daemons it started, then any process that
still carries this cluster's ``SLURM_CONF`` (job steps that slurmd forked away), and deletes
the folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: The programs the cluster runs, and the Debian packages that bring them.
PROGRAMS = {
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "slurmdbd": "slurmdbd",
    "sbatch": "slurm-client",
    "srun": "slurm-client",
    "sacct": "slurm-client",
    "sacctmgr": "slurm-client",
    "munged": "munge",
    "mungekey": "munge",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
}
NODE = "mlsnode"
#: The node's CPUs and memory, as slurmd offers them to jobs.
NODE_CPUS = 2
NODE_MEMORY_MB = 4000
#: Partitions: the default one, and the one the tests ask for through SBATCH_PARTITION.
DEFAULT_PARTITION = "mlsdefault"
PARTITION = "mlsbuild"
#: Accounts: the user's default one, and the one the tests ask for through SBATCH_ACCOUNT.
DEFAULT_ACCOUNT = "mlsdefault"
ACCOUNT = "mlsproject"
#: Seconds between the TERM and the KILL signal when SLURM ends a job (its default is 30).
KILL_WAIT = 5


class ClusterError(RuntimeError):
    """The cluster could not be started or stopped; the message names the step and its log."""


def missing_programs() -> list[str]:
    """The programs of ``PROGRAMS`` that are not installed (looked up on PATH and in /usr/sbin)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [program for program in PROGRAMS if shutil.which(program, path=path) is None]


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def end_process(process: subprocess.Popen, sig: int, timeout: float) -> None:
    """Send ``sig`` to a running process and wait ``timeout`` s for it to end; KILL it if it has not."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``condition`` until it is true; raise ClusterError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


class SlurmCluster:
    """One SLURM node with slurmdbd accounting, private to this process; ``start``, then ``stop``."""

    def __init__(self, base: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="mls-slurm-", dir=base))
        self.name = "mls" + secrets.token_hex(4)  # the ClusterName, as sacct shows it
        self.conf = self.dir / "etc" / "slurm.conf"
        self.daemons: dict[str, subprocess.Popen] = {}
        self.started = False
        self.db_port, self.dbd_port, self.ctld_port, self.slurmd_port = free_ports(4)
        self.host = socket.gethostname().split(".")[0]

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster: SLURM_CONF, the srun of ``bin``, the daemons' folders."""
        return {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": os.pathsep.join([str(self.dir / "bin"), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]),
        }

    def _write_srun(self) -> None:
        """srun with this cluster's SLURM_CONF.

        Inside a job, the plugin's job step drops every SLURM_* variable but the job's
        identity, SLURM_CONF too, before it calls srun; on a real cluster srun then reads
        /etc/slurm/slurm.conf, which this private cluster must leave alone.
        """
        real = shutil.which("srun")
        if real is None:
            raise ClusterError("srun is not installed")
        wrapper = self.dir / "bin" / "srun"
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {real} "$@"\n')
        wrapper.chmod(0o755)

    def run(self, *command: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster (sacct, scontrol, sacctmgr, ...)."""
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise ClusterError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    # -- start ---------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        """Start every daemon, register the cluster, its accounts and user; wait until the node is idle."""
        self.started = True
        for sub in ("etc", "munge", "mysql", "state", "spool", "log", "run"):
            (self.dir / sub).mkdir(mode=0o700)
        # munged wants every client able to reach its socket: the folder may be traversed, not listed
        self.dir.chmod(0o711)
        (self.dir / "socket").mkdir(mode=0o755)
        (self.dir / "bin").mkdir(mode=0o755)
        self._write_configs()
        self._write_srun()
        self._start_mariadb(timeout)
        self._start_munge(timeout)
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        wait_until(lambda: self._alive("slurmdbd") and port_open(self.dbd_port), timeout, self._what("slurmdbd"))
        self._register_accounts()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        wait_until(lambda: self._alive("slurmctld") and port_open(self.ctld_port), timeout, self._what("slurmctld"))
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE])
        wait_until(self._node_idle, timeout, self._what("slurmd", f"node {NODE} to be idle"))

    def _write_configs(self) -> None:
        d = self.dir
        socket_path = d / "socket" / "munge.socket.2"
        auth = f"AuthType=auth/munge\nAuthInfo=socket={socket_path}\n"
        (d / "etc" / "plugstack.conf").write_text("")
        self.conf.write_text(
            f"ClusterName={self.name}\n"
            f"SlurmctldHost={self.host}(127.0.0.1)\n"
            f"SlurmctldPort={self.ctld_port}\nSlurmdPort={self.slurmd_port}\n"
            "SlurmUser=root\nSlurmdUser=root\n" + auth + "CredType=cred/munge\n"
            f"StateSaveLocation={d / 'state'}\nSlurmdSpoolDir={d / 'spool'}\n"
            f"SlurmctldPidFile={d / 'run' / 'slurmctld.pid'}\nSlurmdPidFile={d / 'run' / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}\nSlurmdLogFile={d / 'log' / 'slurmd.log'}\n"
            f"PlugStackConfig={d / 'etc' / 'plugstack.conf'}\n"
            # no cgroups here: processes are tracked by their parents, tasks are not pinned
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherFrequency=task=2\n"
            # the accounting a real cluster has: slurmdbd, and sacct as the plugin's status query
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=127.0.0.1\nAccountingStoragePort={self.dbd_port}\n"
            f"AccountingStoragePass={socket_path}\n"  # the munge socket of the talks to slurmdbd
            "AccountingStorageEnforce=associations\nAccountingStoreFlags=job_comment\n"
            "JobCompType=jobcomp/none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n"
            "SchedulerType=sched/backfill\nMpiDefault=none\nReturnToService=2\n"
            # the node is what this file says, even on a machine with fewer CPUs or less memory
            "SlurmdParameters=config_overrides\n"
            f"KillWait={KILL_WAIT}\nOverTimeLimit=0\nInactiveLimit=0\nMessageTimeout=20\n"
            f"NodeName={NODE} NodeHostname={self.host} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} "
            f"RealMemory={NODE_MEMORY_MB} State=UNKNOWN\n"
            f"PartitionName={DEFAULT_PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n"
            f"PartitionName={PARTITION} Nodes={NODE} Default=NO MaxTime=INFINITE State=UP\n"
        )
        dbd = d / "etc" / "slurmdbd.conf"  # slurmdbd reads it beside SLURM_CONF; it holds a password
        dbd.touch(mode=0o600)
        dbd.write_text(
            auth + f"DbdHost={self.host}\nDbdAddr=127.0.0.1\nDbdPort={self.dbd_port}\nSlurmUser=root\n"
            "StorageType=accounting_storage/mysql\n"
            f"StorageHost=127.0.0.1\nStoragePort={self.db_port}\n"
            f"StorageUser=slurm\nStoragePass={self._db_password}\nStorageLoc=slurm_acct_db\n"
            f"PidFile={d / 'run' / 'slurmdbd.pid'}\nLogFile={d / 'log' / 'slurmdbd.log'}\n"
        )

    @property
    def _db_password(self) -> str:
        path = self.dir / "etc" / "db-password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path.read_text()

    def _start_mariadb(self, timeout: float) -> None:
        """A fresh data directory (small InnoDB files), TCP on 127.0.0.1 only, one user for slurmdbd."""
        data = self.dir / "mysql"
        init = self.dir / "etc" / "init.sql"
        init.touch(mode=0o600)
        init.write_text(
            f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{self._db_password}';\n"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';\n"
        )
        small = ["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--innodb-log-buffer-size=1M"]
        installed = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
             "--auth-root-authentication-method=socket", *small],
            capture_output=True, text=True, timeout=timeout, env=self.env,
        )  # fmt: skip
        if installed.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed: {installed.stdout[-2000:]}{installed.stderr[-2000:]}")
        self._spawn(
            "mariadbd",
            ["mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", f"--port={self.db_port}",
             "--bind-address=127.0.0.1", f"--socket={self.dir / 'run' / 'mysqld.sock'}",
             f"--pid-file={self.dir / 'run' / 'mysqld.pid'}", f"--log-error={self.dir / 'log' / 'mariadbd.log'}",
             "--skip-name-resolve", f"--init-file={init}", *small],
        )  # fmt: skip
        wait_until(lambda: self._alive("mariadbd") and port_open(self.db_port), timeout, self._what("mariadbd"))

    def _start_munge(self, timeout: float) -> None:
        key = self.dir / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True, env=self.env, timeout=timeout)
        socket_path = self.dir / "socket" / "munge.socket.2"
        self._spawn(
            "munged",
            ["munged", "--foreground", f"--socket={socket_path}", f"--key-file={key}",
             f"--pid-file={self.dir / 'run' / 'munged.pid'}", f"--log-file={self.dir / 'log' / 'munged.log'}",
             f"--seed-file={self.dir / 'munge' / 'munged.seed'}"],
        )  # fmt: skip
        wait_until(lambda: self._alive("munged") and socket_path.exists(), timeout, self._what("munged"))

    def _register_accounts(self) -> None:
        self.run("sacctmgr", "-i", "add", "cluster", self.name)
        self.run("sacctmgr", "-i", "add", "account", f"{DEFAULT_ACCOUNT},{ACCOUNT}", f"cluster={self.name}")
        self.run("sacctmgr", "-i", "add", "user", "root", f"account={DEFAULT_ACCOUNT},{ACCOUNT}",
                 f"defaultaccount={DEFAULT_ACCOUNT}", f"cluster={self.name}")  # fmt: skip

    def _spawn(self, name: str, command: list[str]) -> None:
        """Start one daemon in the foreground, in its own session (a Ctrl-C of the tests stays here)."""
        log = open(self.dir / "log" / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
        self.daemons[name] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def _alive(self, name: str) -> bool:
        if self.daemons[name].poll() is not None:
            raise ClusterError(f"{name} exited with status {self.daemons[name].returncode}; {self._what(name)}")
        return True

    def _what(self, name: str, what: str | None = None) -> str:
        logs = ", ".join(str(path) for path in sorted((self.dir / "log").glob(f"{name}*")))
        return f"{what or name} (log: {logs}): {self.log_tail(name)}"

    def log_tail(self, name: str, lines: int = 15) -> str:
        tails = []
        for path in sorted((self.dir / "log").glob(f"{name}*")):
            tails += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(tails)

    def _node_idle(self) -> bool:
        for name in self.daemons:
            self._alive(name)
        done = self.run("sinfo", "-h", "-n", NODE, "-o", "%t", check=False, timeout=30)
        return done.returncode == 0 and done.stdout.split()[:1] == ["idle"]

    # -- stop ----------------------------------------------------------------------------

    def processes(self) -> list[int]:
        """PIDs of every process that carries this cluster's SLURM_CONF (its jobs and job steps)."""
        marker = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
        return pids

    def job_processes(self) -> dict[int, str]:
        """``{pid: SLURM job ID}`` of the processes that run this cluster's jobs."""
        jobs = {}
        for pid in self.processes():
            with contextlib.suppress(OSError):
                environ = dict(
                    item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in item
                )
                if b"SLURM_JOB_ID" in environ:
                    jobs[pid] = environ[b"SLURM_JOB_ID"].decode()
        return jobs

    def stop(self) -> None:
        """Cancel the jobs, end the daemons (TERM, then KILL), end stray job processes, delete the folder."""
        try:
            if self.daemons.get("slurmctld") and self.daemons["slurmctld"].poll() is None:
                with contextlib.suppress(Exception):
                    self.run("scancel", "--full", f"--clusters={self.name}", "--user=root", check=False, timeout=20)
                    wait_until(lambda: not self.run("squeue", "-h", check=False, timeout=20).stdout.strip(), 30, "jobs to end")
            for name in ("slurmd", "slurmctld", "slurmdbd", "munged", "mariadbd"):
                process = self.daemons.get(name)
                if process is not None:
                    end_process(process, signal.SIGTERM, 30)
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SlurmCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
