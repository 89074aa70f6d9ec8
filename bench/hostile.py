#!/usr/bin/env python3
"""Hostile requests against a running luacs, end to end (issue 15).

Each case is played against luacs at 127.0.0.1:PORT (pid PID) while a valid
CPE plays Inform / empty POST / 204 sessions on its own connection in a
loop. Per case it prints: luacs' CPU spent (the sum of its threads' on-CPU
time, /proc/PID/task/*/schedstat, minus what the valid CPE's sessions cost
at the rate measured before the cases), what the attacker got back, the
valid CPE's slowest session and its sessions that took over 1 s, and
luacs' RSS after the case (and, for the memory cases, at its peak).

    bench/hostile.py PID PORT [CASE...]      (bench/hostile runs it)

Meant for a luacs without a policy (the valid CPE answers nothing but the
InformResponse) and with one worker, so that "the worker" is one thread.
"""
import gzip
import os
import socket
import sys
import threading
import time

MIB = 1 << 20
ENV = ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
       'xmlns:cwmp="urn:dslforum-org:cwmp-1-0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">')


def inform(serial, extra=""):
    return (ENV + '<soap:Header><cwmp:ID soap:mustUnderstand="1">1</cwmp:ID></soap:Header>'
            '<soap:Body><cwmp:Inform><DeviceId><Manufacturer>Bench</Manufacturer>'
            '<OUI>00B00B</OUI><ProductClass>Hostile</ProductClass>'
            f'<SerialNumber>{serial}</SerialNumber></DeviceId>'
            '<Event><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey></CommandKey>'
            '</EventStruct></Event><MaxEnvelopes>1</MaxEnvelopes>'
            '<CurrentTime>2026-12-03T00:00:00Z</CurrentTime><RetryCount>0</RetryCount>'
            f'<ParameterList>{extra}</ParameterList></cwmp:Inform></soap:Body></soap:Envelope>')


def param(name, value):
    return (f'<ParameterValueStruct><Name>{name}</Name>'
            f'<Value xsi:type="xsd:string">{value}</Value></ParameterValueStruct>')


def request(body, extra_headers=b"", cookie=None):
    if isinstance(body, str):
        body = body.encode()
    head = b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\n"
    if cookie:
        head += b"Cookie: " + cookie + b"\r\n"
    return head + extra_headers + b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_response(sock, timeout=60):
    """(status, headers bytes, body bytes); status 0 when closed first."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, b"", b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(head.split()[1]), head, rest[:length]
    except (socket.timeout, ConnectionError):
        return 0, b"", b""


def cookie_of(head):
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"set-cookie:"):
            return line.split(b":", 1)[1].split(b";")[0].strip()
    return None


def cpu_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


class ValidCpe(threading.Thread):
    """Sessions back to back (a new connection every 20), timing each."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.lock = threading.Lock()
        self.times = []
        self.failures = 0
        self.stop = False

    def take(self):
        with self.lock:
            t, f = self.times, self.failures
            self.times, self.failures = [], 0
        return t, f

    def run(self):
        n = 0
        sock = None
        while not self.stop:
            if sock is None or n % 20 == 0:
                if sock:
                    sock.close()
                sock = socket.create_connection(("127.0.0.1", self.port))
            n += 1
            t0 = time.monotonic()
            sock.sendall(request(inform("VALID%d" % (n % 50))))
            st, head, _ = read_response(sock, 30)
            ok = st == 200
            if ok:
                sock.sendall(request(b"", cookie=cookie_of(head)))
                st, _, _ = read_response(sock, 30)
                ok = st == 204
            took = time.monotonic() - t0
            with self.lock:
                if ok:
                    self.times.append(took)
                else:
                    self.failures += 1
            if not ok:
                sock.close()
                sock = None
            time.sleep(0.005)


def send_one(port, data, piece=None, rate=None):
    """Sends `data` on a new connection (in pieces of `piece` bytes at `rate`
    bytes/s if given); returns the status luacs answered."""
    s = socket.create_connection(("127.0.0.1", port))
    try:
        if piece is None:
            s.sendall(data)
        else:
            for i in range(0, len(data), piece):
                s.sendall(data[i:i + piece])
                if rate:
                    time.sleep(piece / rate)
    except (BrokenPipeError, ConnectionResetError):
        pass
    st, _, body = read_response(s)
    s.close()
    return "%d %s" % (st, body[:48].decode(errors="replace").strip()) if st else "closed"


def big_doc(kind, n=4 * MIB):
    if kind == "comment":
        return inform("C", "<!--" + "c" * n + "-->")
    if kind == "attribute":
        return ENV.replace("<soap:Envelope", '<soap:Envelope a="' + "v" * n + '"') + "</soap:Envelope>"
    if kind == "pi":
        return "<?xml version=\"1.0\"?><?p " + "i" * n + "?>" + inform("P")
    if kind == "blanks":
        return ENV.replace("<soap:Envelope", "<soap:Envelope" + " " * n) + "</soap:Envelope>"
    if kind == "name":
        return ENV + "<" + "n" * n + "/></soap:Envelope>"
    raise ValueError(kind)


# Distinct names spread over elements of 100 (one tag stays under the
# token cap): what grows a parser's tables.
def many_attributes(n):
    tags = ("<e" + "".join(' a%d="1"' % (i + j) for j in range(100)) + "/>"
            for i in range(0, n, 100))
    return ENV + "<soap:Body><x>" + "".join(tags) + "</x></soap:Body></soap:Envelope>"


def many_namespaces(n):
    tags = ("<e" + "".join(' xmlns:p%d="urn:x:%d"' % (i + j, i + j) for j in range(100)) + "/>"
            for i in range(0, n, 100))
    return ENV + "<soap:Body><x>" + "".join(tags) + "</x></soap:Body></soap:Envelope>"


def many_elements(n):
    return (ENV + "<soap:Body><x>" + "".join("<e%d/>" % i for i in range(n)) +
            "</x></soap:Body></soap:Envelope>")


def gzipped(text):
    return gzip.compress(text.encode(), 9)


def case_noread(port, pid, peak):
    """GetRPCMethods-like unknown requests sent without reading, 64 MiB."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request(inform("NOREAD")))
    st, head, _ = read_response(s)
    cookie = cookie_of(head)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    name = "X" + "m" * 4000
    one = request(ENV + '<soap:Header><cwmp:ID soap:mustUnderstand="1">r</cwmp:ID></soap:Header>'
                  "<soap:Body><cwmp:" + name + "/></soap:Body></soap:Envelope>", cookie=cookie)
    sent = 0
    s.settimeout(5)
    try:
        while sent < 64 * MIB:
            s.sendall(one)
            sent += len(one)
            peak[0] = max(peak[0], rss_kb(pid))
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    peak[0] = max(peak[0], rss_kb(pid))
    s.close()
    return "sent %.1f MiB before luacs stopped reading" % (sent / MIB)


def abandoned():
    """20 sessions opened with 15 MiB Informs, then reset."""
    pad = param("Device.X.Pad", "p" * 3200)  # 4,900 of them: under the Inform's cap
    body = request(inform("ABANDON", pad * min(4900, 15 * MIB // len(pad))))
    bodies = [body.replace(b"ABANDON", b"ABAN%03d" % i) for i in range(20)]

    def run(port, pid, peak):
        socks = []
        for b in bodies:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b)
            read_response(s)
            socks.append(s)
            peak[0] = max(peak[0], rss_kb(pid))
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        time.sleep(1)
        return "20 sessions of %d MiB, then reset" % (len(body) // MIB)
    return run


def case_warnings(port, pid, peak):
    """2,000 malformed requests, one connection each."""
    for _ in range(2000):
        send_one(port, request("<not xml"))
    return "2000 malformed requests"


def sending(make, piece=None, rate=None):
    """A case that sends make()'s bytes on a new connection; the bytes are made
    before the case is timed (the valid CPE shares this process)."""
    def prepare():
        data = make()
        return lambda port, pid, peak: send_one(port, data, piece, rate)
    return prepare


def gzip_x4():
    data = request(gzipped(big_doc("comment", 15 * MIB)), b"Content-Encoding: gzip\r\n")
    return lambda port, pid, peak: "4x " + " / ".join(sorted(set(parallel(
        [lambda: send_one(port, data)] * 4))))


def ready(fn):
    return lambda: fn


GZ = b"Content-Encoding: gzip\r\n"
CASES = {
    "comment": sending(lambda: request(big_doc("comment")), 16384),
    "attribute": sending(lambda: request(big_doc("attribute")), 16384),
    "pi": sending(lambda: request(big_doc("pi")), 16384),
    "blanks": sending(lambda: request(big_doc("blanks")), 16384),
    "name": sending(lambda: request(big_doc("name")), 16384),
    "gzip-comment": sending(lambda: request(gzipped(big_doc("comment", 15 * MIB)), GZ)),
    "gzip-over-cap": sending(lambda: request(gzipped(inform("Z") + " " * (20 * MIB)), GZ)),
    "slow-comment": sending(lambda: request(big_doc("comment", 2 * MIB)), 16384, 512 * 1024),
    "gzip-x4": gzip_x4,
    "attr-names-100k": sending(lambda: request(many_attributes(100_000))),
    "namespaces-100k": sending(lambda: request(many_namespaces(100_000))),
    "elements-1m": sending(lambda: request(many_elements(1_000_000))),
    "noread": ready(case_noread),
    "abandoned": abandoned,
    "warnings": ready(case_warnings),
    "inform-65k-params": sending(lambda: request(inform(
        "MANY", param("Device.X.P", "v") * 65_000))),
}


def parallel(fns):
    out = [None] * len(fns)

    def run(i):
        out[i] = fns[i]()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    names = sys.argv[3:] or list(CASES)
    cpe = ValidCpe(port)
    cpe.start()
    # The valid CPE's own cost, to subtract from each case.
    time.sleep(1)
    cpe.take()
    c0, t0 = cpu_ns(pid), time.monotonic()
    time.sleep(3)
    base_times, _ = cpe.take()
    per_session = (cpu_ns(pid) - c0) / max(1, len(base_times))
    base_rss = rss_kb(pid)
    base_times.sort()
    print("valid CPE alone: %d sessions in %.1f s, luacs %.0f us CPU per session, median %.2f ms,"
          " slowest %.1f ms; luacs RSS %d kB" % (
              len(base_times), time.monotonic() - t0, per_session / 1e3,
              1e3 * base_times[len(base_times) // 2], 1e3 * base_times[-1], base_rss))
    print("| case | attacker got | luacs CPU | valid CPE median / slowest |"
          " sessions > 1 s or failed | RSS after (peak) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        run = CASES[name]()
        cpe.take()
        peak = [rss_kb(pid)]
        c0 = cpu_ns(pid)
        got = run(port, pid, peak)
        time.sleep(0.3)
        times, failed = cpe.take()
        used = cpu_ns(pid) - c0 - per_session * len(times)
        slow = sum(1 for t in times if t > 1) + failed
        after = rss_kb(pid)
        times.sort()
        print("| %s | %s | %.1f ms | %.2f / %.1f ms | %d | %d kB (%d kB) |" % (
            name, got.replace("|", "/"), max(0.0, used) / 1e6,
            1e3 * times[len(times) // 2] if times else float("nan"),
            1e3 * times[-1] if times else float("nan"), slow, after, max(peak[0], after)))
        sys.stdout.flush()
    cpe.stop = True
    time.sleep(5)
    print("luacs RSS 5 s after the last case: %d kB (before the cases: %d kB)" % (rss_kb(pid),
                                                                                base_rss))


if __name__ == "__main__":
    main()
