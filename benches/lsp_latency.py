#!/usr/bin/env python3
"""Re-check latency of `ruledeck lsp` on a large deck, measured as an editor sees it.

Starts the server over stdio on a temporary workspace holding one copy of the deck, opens it,
then sends edits (full-text didChange, as the server asks) and times each until the
diagnostics for that version arrive. Also sends a burst of edits without waiting, to show
that queued edits are coalesced (one check for the newest text), and times a completion
request sent right after an edit.

    cargo build --release
    python3 benches/lsp_latency.py target/release/ruledeck [benches/inputs/deck_1mb.rule] [EDITS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


class Server:
    def __init__(self, exe, root):
        self.p = subprocess.Popen([exe, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0
        self.root = root

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def read(self):
        length = None
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("server closed stdout")
            line = line.strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.p.stdout.read(length))

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            m = self.read()
            if "method" not in m and m.get("id") == self.next_id:
                return m

    def wait_diagnostics(self, version):
        """Reads until diagnostics for `version` arrive; returns them and how many were published."""
        published = 0
        while True:
            m = self.read()
            if m.get("method") == "textDocument/publishDiagnostics":
                published += 1
                if m["params"].get("version") == version:
                    return m["params"]["diagnostics"], published


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/release/ruledeck"
    deck = sys.argv[2] if len(sys.argv) > 2 else "benches/inputs/deck_1mb.rule"
    edits = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    root = tempfile.mkdtemp(prefix="ruledeck-lsp-")
    try:
        path = os.path.join(root, "deck.rule")
        shutil.copy(deck, path)
        text = open(path, encoding="utf-8").read()
        uri = "file://" + path
        s = Server(exe, root)
        t = time.perf_counter()
        s.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                 "workspaceFolders": [{"uri": "file://" + root, "name": "bench"}]})
        s.notify("initialized", {})
        s.wait_diagnostics(None)
        startup = time.perf_counter() - t
        s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "ruledeck",
                                                           "version": 1, "text": text}})
        s.wait_diagnostics(1)

        version = 1
        samples = []
        for i in range(edits):
            version += 1
            # Alternate a clean edit and one that breaks a rule (a did-you-mean error).
            edited = text + f"// edit {i}\n" if i % 2 == 0 else text + f"rule user zz{i} = no_such_rule\n"
            t = time.perf_counter()
            s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                "contentChanges": [{"text": edited}]})
            diags, _ = s.wait_diagnostics(version)
            samples.append(time.perf_counter() - t)
            assert (len(diags) == 0) == (i % 2 == 0), diags[:1]

        burst = 10
        t = time.perf_counter()
        for i in range(burst):
            version += 1
            s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                "contentChanges": [{"text": text + f"// burst {i}\n"}]})
        _, published = s.wait_diagnostics(version)
        burst_time = time.perf_counter() - t

        # Completion right after an edit: includes the re-check of the new text.
        version += 1
        edited = text + "rule user zz_last = user.\n"
        lines = edited.count("\n")
        s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                            "contentChanges": [{"text": edited}]})
        t = time.perf_counter()
        r = s.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                  "position": {"line": lines - 1, "character": 25}})
        completion = time.perf_counter() - t
        items = len(r.get("result") or [])

        s.request("shutdown", None)
        s.notify("exit", None)
        s.p.wait(timeout=10)
        ms = lambda x: round(x * 1000, 1)
        print(json.dumps({
            "deck_bytes": len(text.encode()),
            "startup_check_ms": ms(startup),
            "edit_to_diagnostics_ms": {"median": ms(statistics.median(samples)), "min": ms(min(samples)),
                                       "max": ms(max(samples)), "edits": len(samples)},
            "burst": {"edits": burst, "published": published, "ms_to_newest": ms(burst_time)},
            "completion_after_edit_ms": ms(completion),
            "completion_items": items,
        }, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
