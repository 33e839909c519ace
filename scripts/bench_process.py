"""Running one bench child process to its end, its output in a log file (through a
pseudo-terminal with ``console="tty"``, so progress bars draw as they would for a user)."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from pathlib import Path


def spawn(cmd: list[str], log: Path, console: str, env: dict, timeout: float, check=True) -> str:
    """Run ``cmd`` with its output in ``log`` (through a pseudo-terminal if asked)."""
    with log.open("wb") as sink:
        if console == "tty":
            master, slave = pty.openpty()
            env = {**env, "TERM": os.environ.get("TERM", "xterm"), "COLUMNS": "120"}
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                    env=env)  # fmt: skip
            os.close(slave)

            def drain() -> None:
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        return
                    if not chunk:
                        return
                    sink.write(chunk)

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            try:
                proc.wait(timeout=timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                reader.join(timeout=5)
                os.close(master)
        else:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=sink,
                                  stderr=subprocess.STDOUT, env=env, timeout=timeout)  # fmt: skip
    text = log.read_text(errors="replace").replace("\r\n", "\n")
    if check and proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-40:])
        raise RuntimeError(f"{' '.join(cmd[:3])}… exited {proc.returncode}; log {log}:\n{tail}")
    return text
