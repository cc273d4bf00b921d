"""A fork server for the README test: one process imports dltool and its heavy dependencies once, then forks a
child per `dltool` command the README's blocks run, so ~150 commands do not each pay seconds of imports.

`python tests/readme_server.py SOCKET BIN` serves on the Unix socket SOCKET and writes BIN/dltool, a client that
sends its argv, working folder, environment and standard streams (the file descriptors themselves) to the server
and exits with the command's exit code. A child is the fresh process a shell would have started, already warm:
it takes the client's streams, folder and environment, runs `dltool.cli.main`, and reports its exit code.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

CLIENT = """#!{python} -S
import json, os, socket, sys
server = socket.socket(socket.AF_UNIX)
server.connect({path!r})
request = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(server, [request], [0, 1, 2])
server.shutdown(socket.SHUT_WR)
code = server.recv(16)
sys.exit(int(code) if code else 1)   # no code: the command died of a signal
"""


def _child(connection: socket.socket, fds: list[int], request: dict) -> None:
    """In the forked child: become the command the client stands for, then exit with its code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["dltool", *request["argv"]]
    from dltool.cli import main

    code = 0
    try:
        main(request["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - an uncaught error is what a process would print and exit 1 on
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    connection.sendall(str(code).encode())
    os._exit(code)


def serve(path: str, bin_dir: str) -> None:
    # what nearly every command imports; importing is all the parent does, so forking it is safe
    import matplotlib.pyplot  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    import dltool.cli  # noqa: F401
    import dltool.core.train  # noqa: F401

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    client = Path(bin_dir) / "dltool"
    client.write_text(CLIENT.format(python=sys.executable, path=path))
    client.chmod(0o755)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves: the server never waits
    print("ready", flush=True)
    while True:
        connection, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
        while chunk := connection.recv(1 << 16):
            message += chunk
        if os.fork() == 0:
            listener.close()
            _child(connection, fds, json.loads(message))
        for fd in fds:
            os.close(fd)
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
