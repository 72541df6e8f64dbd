#!/usr/bin/env python3
"""The keras-bench model suite in PyTorch and in Keras 3 on JAX, side by side.

Runs the same four models (mlp, mnist_cnn, cifar_cnn, imdb_lstm) with the same
batch sizes, optimizers and losses as `keras-bench`, times a training step
(forward, backward, update) and prediction for a batch and for one sample, and
prints the ratio table: this library's time / the peer's time (below 1 means
this library is faster). Peers that are not importable are skipped.

    swift run -c release keras-bench --json /tmp/ours.json
    python3 Benchmarks/peers/peers.py --ours /tmp/ours.json [--threads 1,2] [--steps 30]

Each (peer, thread count) runs in its own process, because JAX/XLA and
PyTorch read their thread settings when they start; a run below the core
count is also pinned to that many cores. Not part of CI.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ["mlp", "mnist_cnn", "cifar_cnn", "imdb_lstm"]
BATCH = {"mlp": 128, "mnist_cnn": 128, "cifar_cnn": 64, "imdb_lstm": 32}


def timed(fn, steps, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * (len(times) - 1) + 0.5))] * 1e3
    return {"median": pick(0.5), "p10": pick(0.1), "p90": pick(0.9)}


def data(name, np):
    rng = np.random.default_rng(42)
    n = BATCH[name]
    if name == "imdb_lstm":
        return rng.integers(0, 20000, size=(n, 80)).astype("int32"), rng.integers(0, 2, size=(n, 1)).astype("float32")
    shape = {"mlp": (784,), "mnist_cnn": (28, 28, 1), "cifar_cnn": (32, 32, 3)}[name]
    x = rng.random((n,) + shape, dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=n)]
    return x, y


def run_torch(models, steps, threads):
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(1234)
    out = []
    for name in models:
        if name == "mlp":
            net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        elif name == "mnist_cnn":
            net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                                nn.Linear(128, 10))
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        elif name == "cifar_cnn":
            net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(4096, 512), nn.ReLU(), nn.Linear(512, 10))
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        else:
            class Imdb(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.emb = nn.Embedding(20000, 128)
                    self.lstm = nn.LSTM(128, 128, batch_first=True)
                    self.out = nn.Linear(128, 1)

                def forward(self, x):
                    _, (h, _) = self.lstm(self.emb(x))
                    return self.out(h[-1])
            net = Imdb()
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        xn, yn = data(name, np)
        if name == "imdb_lstm":
            x, y = torch.from_numpy(xn).long(), torch.from_numpy(yn)
            loss_fn = nn.BCEWithLogitsLoss()
        else:
            x = torch.from_numpy(xn)
            if x.dim() == 4:
                x = x.permute(0, 3, 1, 2).contiguous()  # PyTorch's own layout, as its users write it
            y = torch.from_numpy(yn.argmax(1))
            loss_fn = nn.CrossEntropyLoss()  # softmax + categorical cross-entropy on logits

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()

        net.train()
        train = timed(step, steps)
        net.eval()
        with torch.no_grad():
            predict = timed(lambda: net(x), max(10, steps))
            predict1 = timed(lambda: net(x[:1]), max(10, steps))
        out.append({"peer": "pytorch", "model": name, "threads": threads, "train_ms_median": train["median"],
                    "train_ms_p10": train["p10"], "train_ms_p90": train["p90"],
                    "predict_ms_median": predict["median"], "predict1_ms_median": predict1["median"]})
    return out


def run_keras_jax(models, steps, threads):
    import numpy as np
    import keras
    from keras import layers

    keras.utils.set_random_seed(1234)
    out = []
    for name in models:
        if name == "mlp":
            m = keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"),
                                  layers.Dense(512, activation="relu"), layers.Dense(10, activation="softmax")])
            m.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
        elif name == "mnist_cnn":
            m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                                  layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Dropout(0.25),
                                  layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
                                  layers.Dense(10, activation="softmax")])
            m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
        elif name == "cifar_cnn":
            m = keras.Sequential([keras.Input((32, 32, 3)),
                                  layers.Conv2D(32, 3, padding="same", activation="relu"),
                                  layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
                                  layers.Conv2D(64, 3, padding="same", activation="relu"),
                                  layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
                                  layers.Flatten(), layers.Dense(512, activation="relu"),
                                  layers.Dense(10, activation="softmax")])
            m.compile(optimizer="adam", loss="categorical_crossentropy")
        else:
            m = keras.Sequential([keras.Input((80,), dtype="int32"), layers.Embedding(20000, 128), layers.LSTM(128),
                                  layers.Dense(1, activation="sigmoid")])
            m.compile(optimizer="adam", loss="binary_crossentropy")
        x, y = data(name, np)
        train = timed(lambda: m.train_on_batch(x, y), steps)
        predict = timed(lambda: m.predict_on_batch(x), max(10, steps))
        predict1 = timed(lambda: m.predict_on_batch(x[:1]), max(10, steps))
        out.append({"peer": "keras-jax", "model": name, "threads": threads, "train_ms_median": train["median"],
                    "train_ms_p10": train["p10"], "train_ms_p90": train["p90"],
                    "predict_ms_median": predict["median"], "predict1_ms_median": predict1["median"]})
    return out


def child(args):
    threads = args.threads_one
    # XLA's CPU runtime keeps its own thread pool whatever the flags say, so
    # a thread count below the core count is enforced by pinning the process
    # to that many cores (for every peer, so the comparison is even).
    if hasattr(os, "sched_setaffinity") and threads < len(os.sched_getaffinity(0)):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    if args.peer == "pytorch":
        records = run_torch(args.models, args.steps, threads)
    else:
        records = run_keras_jax(args.models, args.steps, threads)
    print(json.dumps(records))


def spawn(peer, models, steps, threads):
    env = dict(os.environ)
    if peer == "keras-jax":
        env["KERAS_BACKEND"] = "jax"
        env["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
    else:
        env["OMP_NUM_THREADS"] = str(threads)
    probe = "import torch" if peer == "pytorch" else "import jax, keras"
    if subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode != 0:
        print(f"{peer}: not importable, skipped", file=sys.stderr)
        return []
    cmd = [sys.executable, __file__, "--child", peer, "--threads-one", str(threads), "--steps", str(steps),
           "--models", ",".join(models)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{peer} threads={threads} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        return []
    return json.loads(r.stdout.strip().splitlines()[-1])


def fmt(v, d=2):
    return "—" if v is None else f"{v:.{d}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", help="keras-bench --json output to compare with")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and all cores)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--peers", default="pytorch,keras-jax")
    ap.add_argument("--json", help="write the peers' records here")
    ap.add_argument("--markdown", help="write the ratio table here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    for m in args.models:
        if m not in MODELS:
            ap.error(f"unknown model '{m}'; the suite has {', '.join(MODELS)}")
    if args.child:
        args.peer = args.child
        return child(args)
    threads = sorted({1, os.cpu_count() or 1}) if args.threads is None else [int(t) for t in args.threads.split(",")]
    records = []
    for peer in args.peers.split(","):
        for t in threads:
            got = spawn(peer, args.models, args.steps, t)
            for r in got:
                print(f"{peer} {r['model']} threads={t}: train {fmt(r['train_ms_median'])} ms, "
                      f"predict {fmt(r['predict_ms_median'])} ms, one sample {fmt(r['predict1_ms_median'], 3)} ms")
            records += got
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(records, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
    ours = {}
    if args.ours:
        with open(args.ours) as f:
            for r in json.load(f):
                ours[(r["model"], r["threads"])] = r
    peers = [p for p in args.peers.split(",") if any(r["peer"] == p for r in records)]
    head = "| model | threads | ours train ms | " + " | ".join(f"{p} train ms | ours/{p} train | ours/{p} predict | ours/{p} predict 1" for p in peers) + " |"
    lines = [head, "|" + "---|" * (3 + 4 * len(peers))]
    for m in args.models:
        for t in threads:
            o = ours.get((m, t))
            ok = o is not None and o.get("status", "ok") == "ok"
            row = [m, str(t), fmt(o["train_ms_median"]) if ok else (o.get("status", "—") if o else "—")]
            for p in peers:
                r = next((r for r in records if r["peer"] == p and r["model"] == m and r["threads"] == t), None)
                ratio = lambda key: fmt(o[key] / r[key]) if ok and r else "—"
                row += [fmt(r["train_ms_median"]) if r else "—", ratio("train_ms_median"), ratio("predict_ms_median"),
                        ratio("predict1_ms_median")]
            lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines) + "\n"
    print("\nthis library's time / the peer's time (below 1: this library is faster)\n")
    print(table)
    if args.markdown:
        with open(args.markdown + ".tmp", "w") as f:
            f.write(table)
        os.replace(args.markdown + ".tmp", args.markdown)


if __name__ == "__main__":
    main()
