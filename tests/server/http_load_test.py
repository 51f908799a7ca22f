#!/usr/bin/env python3
"""HTTP load and abuse test of a running tlcm server (Python standard library only).

    http_load_test.py --port PORT [--model fake] [--size 64x64] [--total 300] [--concurrency 16]
                      [--io-timeout 2] [--no-abuse]

Load: `total` generations at `concurrency` (one keep-alive connection per worker, every fourth
call streamed); every call must answer 200 with decodable images (PNG signature), every stream
must end with tlcm.metrics. Abuse: malformed JSON, wrong types, an oversized body, an oversized
header, a client that stops half-way through its request, a client that never reads its answer,
more idle connections than the server has threads; each must get a clear 4xx (or be cut off after
the server's I/O timeout) and the server must go on serving. Exits 1 on the first failure.
"""
import argparse
import base64
import http.client
import json
import socket
import sys
import threading
import time

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def body_for(args, seed, stream=False):
    return json.dumps({"model": args.model, "prompt": "a lighthouse on a cliff at dawn",
                       "size": args.size, "seed": seed, "stream": stream}).encode()


def post(conn, body, headers=None):
    conn.request("POST", "/v1/images/generations", body=body,
                 headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type", ""), response.read()


def check_answer(status, content_type, data, stream):
    if status != 200:
        return f"status {status}: {data[:200]!r}"
    if stream:
        if not content_type.startswith("text/event-stream"):
            return f"content type {content_type}"
        events = [block for block in data.decode().split("\n\n") if block]
        last = events[-1].splitlines()[0] if events else ""
        if last != "event: tlcm.metrics":
            return f"stream ended with {last!r}"
        completed = [e for e in events if e.startswith("event: image_generation.completed")]
        payloads = [json.loads(e.split("data: ", 1)[1])["b64_json"] for e in completed]
    else:
        payloads = [item["b64_json"] for item in json.loads(data)["data"]]
    if not payloads:
        return "no image"
    for payload in payloads:
        if not base64.b64decode(payload).startswith(PNG_SIGNATURE):
            return "an image is not a PNG"
    return None


def load(args):
    errors = []
    next_call = iter(range(args.total))
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
        while True:
            with lock:
                call = next(next_call, None)
            if call is None:
                break
            stream = call % 4 == 3
            try:
                error = check_answer(*post(conn, body_for(args, call, stream)), stream)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                error = f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
            if error:
                with lock:
                    errors.append(f"call {call}: {error}")
        conn.close()

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - start
    print(f"load: {args.total} calls at concurrency {args.concurrency} in {seconds:.2f} s "
          f"({args.total / seconds:.1f} calls/s), {len(errors)} errors")
    if errors:
        fail("; ".join(errors[:5]))


def expect_error(args, body, status, param=None, headers=None, what=""):
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    got, _, data = post(conn, body, headers)
    conn.close()
    if got != status:
        fail(f"{what}: expected {status}, got {got}: {data[:200]!r}")
    error = json.loads(data)["error"]
    if param is not None and error["param"] != param:
        fail(f"{what}: expected param {param}, got {error}")
    print(f"abuse: {what}: {got} {error['message'][:90]}")


def raw(args, payload, timeout):
    """Sends `payload` on a fresh connection; returns what came back before the server closed."""
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=timeout)
    try:
        sock.sendall(payload)
    except OSError:
        pass  # the server may close before it has read everything (an oversized body)
    received = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return received


def abuse(args):
    expect_error(args, b'{"model": "fake", "prompt": ', 400, "body", what="malformed JSON")
    expect_error(args, b'"just a string"', 400, "body", what="not an object")
    expect_error(args, json.dumps({"model": args.model, "prompt": 7}).encode(), 400, "prompt",
                 what="prompt of the wrong type")
    expect_error(args, json.dumps({"model": args.model, "prompt": "x", "n": 1.5}).encode(), 400,
                 "n", what="n of the wrong type")
    expect_error(args, json.dumps({"model": args.model, "prompt": "x", "size": "huge"}).encode(),
                 400, "size", what="bad size")
    expect_error(args, json.dumps({"model": args.model, "prompt": "x",
                                   "response_format": "url"}).encode(), 400, "response_format",
                 what="response_format url")
    expect_error(args, json.dumps({"model": "x" * 100000, "prompt": "x"}).encode()[:2 << 20],
                 404, what="100 kB model name")

    # A body over the limit: 413 at once, without the server reading the 64 MB announced.
    head = (f"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            f"\r\nContent-Length: {64 << 20}\r\n\r\n").encode()
    answer = raw(args, head + b"{" * (1 << 20), timeout=30)
    if not answer.startswith(b"HTTP/1.1 413"):
        fail(f"oversized body: {answer[:100]!r}")
    print("abuse: 64 MB body announced: 413")

    # A header line longer than the library's 8 KiB limit.
    answer = raw(args, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 +
                 b"\r\n\r\n", timeout=30)
    if answer and not answer.startswith(b"HTTP/1.1 4"):
        fail(f"oversized header: {answer[:100]!r}")
    print(f"abuse: 100 kB header: {answer[:12].decode() or 'connection closed'}")

    # A client that stops half-way through its request is cut off after the I/O timeout.
    start = time.monotonic()
    answer = raw(args, b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
                 b"\r\n\r\n{\"model\":", timeout=args.io_timeout * 4 + 10)
    waited = time.monotonic() - start
    if waited > args.io_timeout * 4 + 5:
        fail(f"a stalled request kept its connection {waited:.1f} s")
    print(f"abuse: stalled body: closed after {waited:.1f} s "
          f"({answer[:12].decode() or 'no answer'})")

    # More idle connections than threads, and a client that never reads its (large) answer:
    # the server still answers a normal call.
    idle = [socket.create_connection(("127.0.0.1", args.port)) for _ in range(64)]
    deaf = socket.create_connection(("127.0.0.1", args.port))
    deaf.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                 % len(body_for(args, 1, stream=True)) + body_for(args, 1, stream=True))
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
    error = check_answer(*post(conn, body_for(args, 5)), False)
    conn.close()
    if error:
        fail(f"call beside 64 idle connections: {error}")
    print(f"abuse: 64 idle connections + a deaf client: a normal call answered in "
          f"{time.monotonic() - start:.1f} s")
    for sock in idle + [deaf]:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="fake")
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--total", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--io-timeout", type=float, default=2)
    parser.add_argument("--no-abuse", action="store_true")
    args = parser.parse_args()
    load(args)
    if not args.no_abuse:
        abuse(args)
        load(argparse.Namespace(**{**vars(args), "total": 16}))  # still serving
    print("http load test: passed")


if __name__ == "__main__":
    main()
