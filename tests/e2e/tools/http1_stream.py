#!/usr/bin/env python3
"""One keep-alive HTTP/1.1 connection whose messages are written the awkward ways
real peers write them, for the e2e test of nothing lost or doubled (issue 28):

  http1_stream.py server            prints its port, serves one connection
  http1_stream.py client PORT PFX   runs the sequence under path prefix PFX (repeatable
                                    on the same connection: PFX,PFX2,...), prints JSON
                                    [[method, path, status, req_bytes, resp_bytes], ...]

The sequence per prefix: a request written in 7 pieces and its response in 40; two
requests in one write answered in one write; a 1 MiB response body in one sendall; a
1 MiB request body; a small call after each large one. Both sides set TCP_NODELAY and
pause between pieces so that each piece is its own syscall."""
import json
import socket
import sys
import time

BIG = 1 << 20
SPLIT_BODY = b'{"split":"' + b"x" * 150 + b'"}'


def pieces(data, n):
    step = max(1, -(-len(data) // n))
    return [data[i:i + step] for i in range(0, len(data), step)]


def response(status, body, extra=b""):
    return (b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, len(body), extra)) + body


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def read_message(sock, buf):
    """One message (head + Content-Length body): (head, body, rest), or (None, ...) at EOF."""
    head, buf = read_head(sock, buf)
    if head is None:
        return None, b"", buf
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(buf) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    return head, buf[:length], buf[length:]


def serve():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    print(lst.getsockname()[1], flush=True)
    conn, _ = lst.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    pending = []
    while True:
        head, body, buf = read_message(conn, buf)
        if head is None:
            break
        path = head.split(b" ")[1]
        pending.append(path)
        if path.endswith(b"/pipe/a"):
            continue  # answered with /pipe/b, in one write
        if path.endswith(b"/split"):
            for p in pieces(response(200, SPLIT_BODY), 40):
                conn.sendall(p)
                time.sleep(0.001)
        elif path.endswith(b"/pipe/b"):
            conn.sendall(b"".join(response(200, b'{"p":"%s"}' % p[-1:]) for p in pending))
        elif path.endswith(b"/big"):
            conn.sendall(response(200, b"b" * BIG))
        elif path.endswith(b"/upload"):
            conn.sendall(response(201, b'{"got":%d}' % len(body)))
        else:
            conn.sendall(response(200, b'{"ok":true}'))
        pending = []
    conn.close()


def request(method, host, path, body=b""):
    extra = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body) if body or method == "POST" else b""
    return b"%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: http1-stream\r\n%s\r\n" % (
        method.encode(), path.encode(), host.encode(), extra) + body


def client(port, prefixes):
    host = f"127.0.0.1:{port}"
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done, buf = [], b""

    def exchange(method, path, body=b"", split=0):
        nonlocal buf
        req = request(method, host, path, body)
        for p in pieces(req, split) if split else [req]:
            s.sendall(p)
            if split:
                time.sleep(0.001)
        head, rbody, buf = read_message(s, buf)
        done.append([method, path, int(head.split(b" ")[1]), len(req), len(head) + 4 + len(rbody)])

    for pfx in prefixes:
        exchange("GET", f"{pfx}/split", split=7)
        a, b = request("GET", host, f"{pfx}/pipe/a"), request("GET", host, f"{pfx}/pipe/b")
        s.sendall(a + b)
        for path, req in ((f"{pfx}/pipe/a", a), (f"{pfx}/pipe/b", b)):
            head, rbody, buf = read_message(s, buf)
            done.append(["GET", path, int(head.split(b" ")[1]), len(req), len(head) + 4 + len(rbody)])
        exchange("GET", f"{pfx}/big")
        exchange("GET", f"{pfx}/after-big")
        exchange("POST", f"{pfx}/upload", body=b'{"u":"' + b"u" * (BIG - 8) + b'"}')
        exchange("GET", f"{pfx}/after-upload")
    s.close()
    print(json.dumps(done))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    else:
        client(int(sys.argv[2]), sys.argv[3].split(","))
