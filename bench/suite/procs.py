"""Running one benchmark command: bounded by a timeout, output kept in a log, result rows
(`name,value,unit,baseline,ratio` lines) parsed out of its standard output."""
import os
import re
import signal
import subprocess
import time

ROW = re.compile(r"^([A-Za-z0-9_.]+),([-0-9.e+]+),([^,]*),([-0-9.e+]*),([-0-9.e+]*)$")


class RunFailed(Exception):
    """The command failed; the message is the reason shown in the FAILED row."""


def run(cmd, timeout_s, log_path, env=None):
    """Runs cmd; returns (stdout text, wall seconds, exit epoch). Raises RunFailed."""
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        start = time.monotonic()
        # A session of its own, so a timeout ends mpirun and everything it started.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            log.write(f"\n[bench/run: killed after {timeout_s} s]\n")
            raise RunFailed(f"timed out after {timeout_s} s (log {log_path})")
        except BaseException:  # bench/run itself is being stopped: take the job with it
            kill_group(proc)
            raise
        exit_epoch = time.time()
        wall = time.monotonic() - start
        log.write(out)
    if proc.returncode != 0:
        raise RunFailed(f"exit {proc.returncode}: {last_line(log_path)} (log {log_path})")
    return out, wall, exit_epoch


def kill_group(proc):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def last_line(log_path):
    """The last meaningful line of a log: usually the error."""
    with open(log_path, errors="replace") as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("$ ")]
    return lines[-1][:200] if lines else "no output"


def parse_rows(text):
    """[(name, value, unit)] of every result row in a program's output."""
    rows = []
    for line in text.splitlines():
        m = ROW.match(line.strip())
        if m:
            rows.append((m.group(1), float(m.group(2)), m.group(3)))
    return rows
