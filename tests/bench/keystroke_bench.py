#!/usr/bin/env python3
"""Keystroke-to-inline-completion benchmark over LSP (issue 13): starts the real language server over stdio,
opens a ~1,500-token Python file, asks for an automatic inline completion at its end (the cold first
completion), then types a new line one character at a time, each keystroke a didChange plus an automatic
textDocument/inlineCompletion answered before the next key. Prints the cold time, p50/p90 of the keystrokes
the tokens generated per keystroke and, of those, the drafted and accepted tokens of speculative decoding
(codellama/debugStats), as a markdown table on stdout. --speculative off measures plain decoding.

Usage: keystroke_bench.py [--max-tokens 16] [--debounce-ms 0] [--speculative auto|off] -- SERVER COMMAND...
e.g.   keystroke_bench.py -- codellama-lsp --stdio --model /tmp/ckpt34 --device cuda --context-size 4096
Needs only Python 3 (the GPU machine has no Node)."""
import json, statistics, subprocess, sys, threading, time

def main():
    args = sys.argv[1:]
    split = args.index("--")
    opts, command = args[:split], args[split + 1:]
    max_tokens = int(opts[opts.index("--max-tokens") + 1]) if "--max-tokens" in opts else 16
    debounce = int(opts[opts.index("--debounce-ms") + 1]) if "--debounce-ms" in opts else 0
    speculative = opts[opts.index("--speculative") + 1] if "--speculative" in opts else "auto"
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
    pending, ready, lock = {}, threading.Event(), threading.Lock()

    def reader():
        out = server.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                headers[k.lower()] = v.strip()
            msg = json.loads(out.read(int(headers["content-length"])))
            if msg.get("method") == "codellama/status" and msg["params"].get("state") == "ready":
                ready.set()
            if "id" in msg and "method" not in msg:
                with lock:
                    slot = pending.pop(msg["id"], None)
                if slot:
                    slot[1] = msg
                    slot[0].set()

    threading.Thread(target=reader, daemon=True).start()
    next_id = [0]

    def send(obj):
        body = json.dumps(obj).encode()
        server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        server.stdin.flush()

    def request(method, params):
        next_id[0] += 1
        slot = [threading.Event(), None]
        with lock:
            pending[next_id[0]] = slot
        send({"jsonrpc": "2.0", "id": next_id[0], "method": method, "params": params})
        slot[0].wait(300)
        return slot[1]

    def notify(method, params):
        send({"jsonrpc": "2.0", "method": method, "params": params})

    request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                           "initializationOptions": {"maxTokens": max_tokens, "debounceMs": debounce,
                                                                     "speculative": speculative}})
    notify("initialized", {})
    t0 = time.time()
    if not ready.wait(600):
        sys.exit("the model did not become ready")
    load = time.time() - t0

    # About 1,500 tokens of ordinary Python (deterministic, so every run sees the same prompt).
    lines = ["import math", "from dataclasses import dataclass", ""]
    for i in range(42):
        lines += [f"def measure_{i}(values, scale={i + 1}):",
                  f"    \"\"\"Scaled mean of the values above {i}.\"\"\"",
                  f"    kept = [v * scale for v in values if v > {i}]",
                  "    return sum(kept) / max(len(kept), 1)", ""]
    lines += ["def summarize(values):", "    total = 0.0"]
    text = "\n".join(lines) + "\n"
    uri = "file:///bench/measure.py"
    notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})

    def complete(line, char):
        t = time.perf_counter()
        request("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": {"line": line, "character": char},
                                                  "context": {"triggerKind": 2}})
        return time.perf_counter() - t

    last_line = len(lines)
    cold = complete(last_line, 0)
    typed, version, latencies = "    for value in values:", 1, []
    stats0 = request("codellama/debugStats", {})["result"]
    for k in range(1, len(typed) + 1):
        version += 1
        notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                          "contentChanges": [{"text": text + typed[:k]}]})
        latencies.append(complete(last_line, k))
    stats1 = request("codellama/debugStats", {})["result"]
    request("shutdown", None)
    notify("exit", None)
    server.wait(30)
    latencies.sort()
    p50 = statistics.median(latencies)
    p90 = latencies[min(len(latencies) - 1, int(round(0.9 * (len(latencies) - 1))))]
    def per_key(name):
        return (stats1.get(name, 0) - stats0.get(name, 0)) / len(latencies)
    tokens = per_key("tokensGenerated")
    print("| measure | value |\n|---|---|")
    print(f"| model load (to status ready) | {load:.1f} s |")
    print(f"| cold first completion (~1,500-token file) | {cold * 1000:.0f} ms |")
    print(f"| keystroke to inline completion, p50 ({len(latencies)} keys, maxTokens {max_tokens}, debounceMs {debounce}, speculative {speculative}) | {p50 * 1000:.0f} ms |")
    print(f"| keystroke to inline completion, p90 | {p90 * 1000:.0f} ms |")
    print(f"| tokens generated per keystroke (debugStats) | {tokens:.1f} |")
    print(f"| draft tokens per keystroke: proposed / accepted | {per_key('draftedTokens'):.1f} / {per_key('acceptedTokens'):.1f} |")

if __name__ == "__main__":
    main()
