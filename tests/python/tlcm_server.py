"""tlcm-server on the built-in demo models, on free loopback ports, for the Python end-to-end tests.

The server writes one JSON object per line on stderr (server/request_log.h); this helper keeps
them in a file, reads the ports from the "listening" line and waits for the "ready" one.
The build folder comes from the environment variable TLCM_BUILD_DIR (ctest sets it).
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180   # loading and warming the demo models takes a few seconds; CI is slow
STOP_TIMEOUT_S = 60


def build_dir() -> pathlib.Path:
    path = os.environ.get("TLCM_BUILD_DIR")
    if not path:
        raise RuntimeError("TLCM_BUILD_DIR is not set: run the test through ctest")
    return pathlib.Path(path)


class TlcmServer:
    """A running tlcm-server; stop() ends it with SIGTERM (a drain) and returns its exit code.

    Every port is a free one: gRPC (`port`, `target`) and HTTP (`http_port`, `http_url`).
    No metrics endpoint.
    """

    def __init__(self, *flags: str):
        binary = build_dir() / "server" / "tlcm-server"
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} is missing: build the tlcm-server target first")
        self._log = tempfile.NamedTemporaryFile(prefix="tlcm-server-", suffix=".log")
        self._process = subprocess.Popen(
            [str(binary), "--listen_address", "127.0.0.1", "--port", "0", "--metrics_port", "-1",
             "--http_port", "0", *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            listening = self.wait_for_line(lambda line: line.get("event") == "listening",
                                           START_TIMEOUT_S)
            self.port = int(re.search(r"\(port (\d+)", listening["message"]).group(1))
            self.target = f"127.0.0.1:{self.port}"
            self.http_port = int(re.search(r"HTTP on [^ ]*:(\d+)", listening["message"]).group(1))
            scheme = "https" if "--tls_cert" in flags else "http"
            self.http_url = f"{scheme}://127.0.0.1:{self.http_port}"
            ready = self.wait_for_line(lambda line: line.get("event") in ("ready", "load_failed"),
                                       START_TIMEOUT_S)
            if ready["event"] != "ready":
                raise RuntimeError(f"tlcm-server could not load its models: {ready['message']}")
        except BaseException:
            self._process.kill()
            self._process.wait()
            raise

    def log_lines(self):
        """The server's log so far, one dict per JSON line (other lines are skipped)."""
        lines = []
        for text in pathlib.Path(self._log.name).read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                pass
        return lines

    def wait_for_line(self, predicate, timeout_s: float):
        """The first log line for which predicate(line) holds, waiting up to timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.log_lines():
                if predicate(line):
                    return line
            if self._process.poll() is not None:
                raise RuntimeError(f"tlcm-server exited with {self._process.returncode}:\n"
                                   + self.log_tail())
            if time.monotonic() > deadline:
                raise RuntimeError(f"no such log line after {timeout_s} s:\n" + self.log_tail())
            time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(pathlib.Path(self._log.name).read_text(errors="replace")
                         .splitlines()[-lines:])

    def stop(self) -> int:
        """Sends SIGTERM and waits for the exit; returns the exit code (0 after a clean drain)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        return self._process.returncode
