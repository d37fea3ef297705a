"""HTTP/1 as servers and clients really speak it, replayed over loopback TCP
between two processes (issue 14). Each case is one connection: the client writes
its request bytes, the server answers with its scripted bytes.

  http1_replay.py server    listens on 127.0.0.1:0, prints the port, serves each case once
  http1_replay.py client PORT   runs every case once, prints one line per case
"""
import socket
import sys
import time

# name: (request writes, response writes, server closes after answering)
# Writes are separate send() calls (a tuple of chunks); the server answers each
# request write with the next response write.
CASES = {
    "report": ([b"REPORT /dav/report HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"],
               [b"HTTP/1.1 207 Multi-Status\r\nContent-Length: 2\r\n\r\nok"], False),
    "search": ([b"SEARCH /dav/search HTTP/1.1\r\nHost: h\r\n\r\n"],
               [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], False),
    "purge": ([b"PURGE /cache/purge HTTP/1.1\r\nHost: h\r\n\r\n"],
              [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False),
    "link": ([b"LINK /dav/link HTTP/1.1\r\nHost: h\r\n\r\n"],
             [b"HTTP/1.1 204 No Content\r\n\r\n"], False),
    "source": ([b"SOURCE /stream/source HTTP/1.1\r\nHost: h\r\n\r\n"],
               [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False),
    "query": ([b"QUERY /api/query HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"],
              [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"], False),
    "msearch": ([b"M-SEARCH * HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"],
                [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False),
    "leading_crlf": ([b"\r\nGET /lead/crlf HTTP/1.1\r\nHost: h\r\n\r\n"],
                     [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False),
    "close_http10": ([b"GET /close/http10 HTTP/1.0\r\n\r\n"],
                     [b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close"], True),
    "close_header": ([b"GET /close/header HTTP/1.1\r\nHost: h\r\n\r\n"],
                     [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"until\":\"close\"}"], True),
    "no_reason": ([b"GET /status/noreason HTTP/1.1\r\nHost: h\r\n\r\n"],
                  [b"HTTP/1.1 301\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"], False),
    "empty_reason": ([b"GET /status/emptyreason HTTP/1.1\r\nHost: h\r\n\r\n"],
                     [b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"], False),
    "not_modified": ([b"GET /cache/304 HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n"],
                     [b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n"], False),
    "head": ([b"HEAD /head/len HTTP/1.1\r\nHost: h\r\n\r\n"],
             [b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"], False),
    "continue": ([b"POST /upload/continue HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                  b"data"],
                 [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"], False),
    "pipelined": ([b"GET /pipe/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /pipe/2 HTTP/1.1\r\nHost: h\r\n\r\n"],
                  [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"], False),
    "fragment": ([b"GET /frag/posts?page=1#posts HTTP/1.1\r\nHost: h\r\n\r\n"],
                 [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False),
    "absolute": ([b"GET http://host:1234?x=1 HTTP/1.1\r\nHost: host:1234\r\n\r\n"],
                 [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False),
}


def serve():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(ls.getsockname()[1], flush=True)
    for name, (reqs, resps, close) in CASES.items():  # one connection per case, in order
        c, _ = ls.accept()
        for i, resp in enumerate(resps):
            want = len(reqs[i]) if i < len(reqs) else 0
            got = b""
            while len(got) < want:
                got += c.recv(65536)
            c.sendall(resp)
        if close:
            c.close()
        else:
            c.recv(1)  # the client closes first
            c.close()


def client(port):
    for name, (reqs, resps, close) in CASES.items():
        c = socket.create_connection(("127.0.0.1", port))
        got = b""
        for i, req in enumerate(reqs):
            c.sendall(req)
            want = sum(len(r) for r in resps[:i + 1])
            while len(got) < want:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
        if close:
            while c.recv(65536):
                pass
        c.close()
        print(name, len(got), flush=True)
        time.sleep(0.02)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    else:
        client(int(sys.argv[2]))
