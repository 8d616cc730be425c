#!/usr/bin/env python3
"""Offline trainer and evaluator for Tollgate's learned router (features: FEATURES.md, v1).

Train (cross-validation by subject, final model, weights file, parity fixtures):
    python3 tools/router/train.py
Evaluate any weights file on any routing JSONL file:
    python3 tools/router/train.py --eval-only --weights FILE --data FILE.jsonl --strong A --weak B

Only numpy; everything else is written here (FNV-1a hashing, sparse matrices as index/value arrays,
L-BFGS for L2-regularised logistic regression, routing metrics as in the RouteLLM paper).
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "routing", "gpt4_vs_mixtral_mmlu_train.jsonl")
DEFAULT_OUT = os.path.join(REPO, "Sources", "TollgateServer", "Resources", "router-default.json")
DEFAULT_PARITY = os.path.join(HERE, "parity.json")
DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mixtral-8x7b-instruct-v0.1"

DIMENSIONS = 1 << 18
MAX_BYTES = 32768
N_DENSE = 6
SHARES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

# ---------------------------------------------------------------------------------------------------------
# Features (FEATURES.md)
# ---------------------------------------------------------------------------------------------------------
_LOWER = bytes((b + 32) if 65 <= b <= 90 else b for b in range(256))
_TOKEN_RE = re.compile(rb"[a-z0-9\x80-\xff]+")
_fnv_cache = {}


def _finite(value):
    """JSON has no NaN: an undefined metric is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def fnv1a32(data):
    h = _fnv_cache.get(data)
    if h is None:
        h = 2166136261
        for c in data:
            h = ((h ^ c) * 16777619) & 0xFFFFFFFF
        if len(_fnv_cache) < 4_000_000:
            _fnv_cache[data] = h
    return h


NEGATIONS = frozenset((b"not", b"except", b"least", b"false", b"incorrect", b"never", b"cannot", b"unlikely"))
MATH_SYMBOLS = frozenset(b"=+^*/<>")
DENSE_NAMES = ["log_question_bytes", "mean_word_length", "statements", "log_math_symbols", "log_numbers",
               "log_negations"]


def _letter(c):
    return 65 <= c <= 90 or 97 <= c <= 122


def _digit(c):
    return 48 <= c <= 57


def dense_features(raw):
    """The 6 prompt statistics of FEATURES.md v2, on the first 32,768 UTF-8 bytes (case kept)."""
    n = len(raw)
    # the question: the bytes before the first line whose first non-blank bytes are "A.", "A)" or "(A)"
    question = n
    i = 0
    while i < n:
        j = i
        while j < n and raw[j] in (32, 9):
            j += 1
        if raw.startswith(b"A.", j) or raw.startswith(b"A)", j) or raw.startswith(b"(A)", j):
            question = i
            break
        k = raw.find(b"\n", i)
        if k < 0:
            break
        i = k + 1
    low = raw.translate(_LOWER)
    statements = 1.0 if (b"statement 1" in low or b"scenario 1" in low) else 0.0
    negations = low.count(b"n't")
    words = letters = 0
    i = 0
    while i < n:
        if not _letter(raw[i]):
            i += 1
            continue
        j = i
        while j < n and _letter(raw[j]):
            j += 1
        words += 1
        letters += j - i
        word = raw[i:j]
        if word == b"II" or (word == b"I" and j + 1 < n and raw[j] == 46 and raw[j + 1] in (32, 9, 10, 13)):
            statements = 1.0
        if low[i:j] in NEGATIONS:
            negations += 1
        i = j
    symbols = sum(1 for c in raw if c in MATH_SYMBOLS) + raw.count(b"sqrt")
    numbers = 0
    for i in range(n):
        c = raw[i]
        if _digit(c) and (i == 0 or not _digit(raw[i - 1])):
            numbers += 1
        elif c == 46 and 0 < i < n - 1 and _digit(raw[i - 1]) and _digit(raw[i + 1]):
            numbers -= 1  # "3.14" is one number
    return [
        math.log1p(question),
        letters / words if words else 0.0,
        statements,
        math.log1p(symbols),
        math.log1p(numbers),
        math.log1p(negations),
    ]


def features(text, dims=DIMENSIONS):
    """Return (indices sorted ascending, values after log1p and L2 normalisation, dense list of 6)."""
    raw = text.encode("utf-8", errors="replace")[:MAX_BYTES]
    b = raw.translate(_LOWER)
    toks = _TOKEN_RE.findall(b)
    counts = {}
    for t in toks:
        i = fnv1a32(b"u:" + t) % dims
        counts[i] = counts.get(i, 0) + 1
    for k in range(len(toks) - 1):
        i = fnv1a32(b"b:" + toks[k] + b" " + toks[k + 1]) % dims
        counts[i] = counts.get(i, 0) + 1
    idx = sorted(counts)
    vals = [math.log1p(counts[i]) for i in idx]
    norm = math.sqrt(sum(v * v for v in vals))
    if norm > 0:
        vals = [v / norm for v in vals]
    return idx, vals, dense_features(raw)


class Matrix:
    """Rows of sparse features (CSR as index/value arrays) plus a dense block."""

    def __init__(self, texts, dims=DIMENSIONS):
        self.dims = dims
        self.n = len(texts)
        ind, val, rows, dense = [], [], [], []
        for r, t in enumerate(texts):
            i, v, d = features(t, dims)
            ind.extend(i)
            val.extend(v)
            rows.extend([r] * len(i))
            dense.append(d)
        self.ind = np.asarray(ind, dtype=np.int64)
        self.val = np.asarray(val, dtype=np.float64)
        self.row = np.asarray(rows, dtype=np.int64)
        self.dense = np.asarray(dense, dtype=np.float64).reshape(self.n, N_DENSE)

    def subset(self, mask):
        m = Matrix.__new__(Matrix)
        m.dims = self.dims
        keep = np.flatnonzero(mask)
        remap = -np.ones(self.n, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        sel = mask[self.row]
        m.ind, m.val, m.row = self.ind[sel], self.val[sel], remap[self.row[sel]]
        m.dense = self.dense[keep]
        m.n = len(keep)
        return m

    def logits(self, ws, wd, b):
        s = np.bincount(self.row, weights=self.val * ws[self.ind], minlength=self.n)
        return s + self.dense @ wd + b


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# ---------------------------------------------------------------------------------------------------------
# Logistic regression with L2, trained by L-BFGS
# ---------------------------------------------------------------------------------------------------------
def lbfgs(f, x0, iters=200, m=10, tol=1e-7):
    x = x0.copy()
    fx, g = f(x)
    S, Y = [], []
    for _ in range(iters):
        q = g.copy()
        alphas = []
        for s, y in reversed(list(zip(S, Y))):
            a = (s @ q) / (y @ s)
            alphas.append(a)
            q -= a * y
        if S:
            q *= (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
        for (s, y), a in zip(zip(S, Y), reversed(alphas)):
            beta = (y @ q) / (y @ s)
            q += (a - beta) * s
        d = -q
        gd = g @ d
        if gd >= 0:
            d, gd, S, Y = -g, -(g @ g), [], []
        step = 1.0
        for _ls in range(30):
            xn = x + step * d
            fn, gn = f(xn)
            if fn <= fx + 1e-4 * step * gd:
                break
            step *= 0.5
        else:
            break
        s, y = xn - x, gn - g
        if s @ y > 1e-12:
            S.append(s)
            Y.append(y)
            if len(S) > m:
                S.pop(0)
                Y.pop(0)
        converged = abs(fx - fn) <= tol * max(1.0, abs(fx))
        x, fx, g = xn, fn, gn
        if converged:
            break
    return x


def fit(X, y, lam_sparse, lam_dense, mask=None, x0=None, iters=200, weight=None):
    D = X.dims
    w_i = np.ones(X.n) if weight is None else weight
    w_i = w_i / w_i.sum()

    def f(x):
        ws, wd, b = x[:D], x[D:D + N_DENSE], x[-1]
        if mask is not None:
            ws = ws * mask
        z = X.logits(ws, wd, b)
        # log-loss, numerically stable
        loss = np.sum(w_i * (np.logaddexp(0.0, z) - y * z))
        r = w_i * (sigmoid(z) - y)
        gs = np.bincount(X.ind, weights=X.val * r[X.row], minlength=D) + lam_sparse * ws
        if mask is not None:
            gs *= mask
        gd = X.dense.T @ r + lam_dense * wd
        gb = r.sum()
        loss += 0.5 * lam_sparse * (ws @ ws) + 0.5 * lam_dense * (wd @ wd)
        return loss, np.concatenate([gs, gd, [gb]])

    if x0 is None:
        x0 = np.zeros(D + N_DENSE + 1)
        p = np.clip(np.average(y, weights=w_i), 1e-3, 1 - 1e-3)
        x0[-1] = math.log(p / (1 - p))
    x = lbfgs(f, x0, iters=iters)
    ws = x[:D] if mask is None else x[:D] * mask
    return ws, x[D:D + N_DENSE], x[-1]


def train_model(X, y, cfg, groups=None):
    """Fit, prune to the largest `max_sparse` sparse weights, refit on that support. Returns (ws, wd, b).

    Dense features are standardised for the fit (better conditioning, comparable penalties) and the scaling is
    folded back into the dense weights and the bias, so the exported model uses the raw FEATURES.md values.
    With cfg["balance"], every group (subject) carries the same total weight in the loss."""
    mu = X.dense.mean(0)
    sd = X.dense.std(0)
    sd[sd < 1e-12] = 1.0
    Xs = Matrix.__new__(Matrix)
    Xs.__dict__.update(X.__dict__)
    Xs.dense = (X.dense - mu) / sd
    weight = None
    if cfg.get("balance") and groups is not None:
        g = np.asarray(groups)
        uniq, inv, cnt = np.unique(g, return_inverse=True, return_counts=True)
        weight = 1.0 / cnt[inv]
    ls, ld, iters = cfg["lam_sparse"], cfg["lam_dense"], cfg.get("iters", 200)
    k = cfg["max_sparse"]
    if k == 0:
        # prompt statistics only: the hashed words are masked out of the fit
        ws, wd, b = fit(Xs, y, ls, ld, mask=np.zeros(X.dims), iters=iters, weight=weight)
    else:
        ws, wd, b = fit(Xs, y, ls, ld, iters=iters, weight=weight)
        nz = np.flatnonzero(np.abs(ws) >= 1e-4)
        if len(nz) > k:
            keep = nz[np.argsort(-np.abs(ws[nz]), kind="stable")[:k]]
            mask = np.zeros(X.dims)
            mask[keep] = 1.0
            x0 = np.concatenate([ws * mask, wd, [b]])
            ws, wd, b = fit(Xs, y, ls, ld, mask=mask, x0=x0, iters=60, weight=weight)
        ws = np.where(np.abs(ws) >= 1e-4, ws, 0.0)
    return ws, wd / sd, b - float(np.sum(wd * mu / sd))


# ---------------------------------------------------------------------------------------------------------
# Metrics (data README: APGR, CPT, quality at a share of strong calls)
# ---------------------------------------------------------------------------------------------------------
def routing_curve(router_score, s_strong, s_weak):
    """Quality for k = 0..n strong calls, routing the k highest router scores to strong.
    Tied router scores are averaged (expected value under random tie-breaking)."""
    n = len(router_score)
    order = np.argsort(-router_score, kind="stable")
    gain = (s_strong - s_weak)[order]
    rs = router_score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(rs) != 0) + 1]
    lens = np.diff(np.r_[starts, n])
    gain = np.repeat(np.add.reduceat(gain, starts) / lens, lens)
    return (s_weak.sum() + np.r_[0.0, np.cumsum(gain)]) / n


def metrics(router_score, s_strong, s_weak):
    n = len(router_score)
    q = routing_curve(np.asarray(router_score, dtype=np.float64), s_strong, s_weak)
    qs, qw = s_strong.mean(), s_weak.mean()
    shares = np.arange(n + 1) / n
    out = {"n": n, "quality_strong": qs, "quality_weak": qw}
    if qs - qw <= 1e-12:
        out.update(apgr=float("nan"), cpt50=float("nan"), cpt80=float("nan"))
    else:
        pgr = (q - qw) / (qs - qw)
        out["apgr"] = float(np.trapezoid(pgr, shares))
        for name, level in (("cpt50", 0.5), ("cpt80", 0.8)):
            hit = np.flatnonzero(pgr >= level - 1e-12)
            out[name] = float(shares[hit[0]]) if len(hit) else 1.0
    for s in (0.2, 0.5, 0.8):
        out["q%d" % round(s * 100)] = float(q[int(round(s * n))])
    return out


def length_score(texts):
    return np.array([len(t.encode("utf-8", errors="replace")) for t in texts], dtype=np.float64)


def three_way(score, texts, ss, sw):
    return {
        "learned": metrics(score, ss, sw),
        "random": metrics(np.zeros(len(texts)), ss, sw),
        "length": metrics(length_score(texts), ss, sw),
    }


def print_table(title, res, file=sys.stdout):
    print(title, file=file)
    print("  %-8s %7s %7s %7s %7s %7s %7s" % ("router", "APGR", "CPT50", "CPT80", "Q@20%", "Q@50%", "Q@80%"),
          file=file)
    for name in ("learned", "random", "length"):
        if name not in res:
            continue
        m = res[name]
        print("  %-8s %7.4f %6.1f%% %6.1f%% %7.4f %7.4f %7.4f" % (
            name, m["apgr"], 100 * m["cpt50"], 100 * m["cpt80"], m["q20"], m["q50"], m["q80"]), file=file)
    m = res[next(iter(res))]
    print("  (n=%d, strong alone %.4f, weak alone %.4f)" % (m["n"], m["quality_strong"], m["quality_weak"]),
          file=file)


def mean_metrics(list_of_res):
    out = {}
    for name in list_of_res[0]:
        keys = list_of_res[0][name]
        # folds where the strong model is not better than the weak one have no PGR: skipped
        out[name] = {k: float(np.nanmean([r[name][k] for r in list_of_res])) for k in keys}
        out[name]["apgr_std"] = float(np.nanstd([r[name]["apgr"] for r in list_of_res]))
    return out


# ---------------------------------------------------------------------------------------------------------
# Data and weights I/O
# ---------------------------------------------------------------------------------------------------------
def load_rows(path, strong, weak):
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    models = sorted({m for r in rows for m in r["scores"]})
    for m in (strong, weak):
        if m not in models:
            sys.exit("model %r is not in %s; models there: %s" % (m, path, ", ".join(models)))
    rows = [r for r in rows if strong in r["scores"] and weak in r["scores"]]
    texts = [r["prompt"] for r in rows]
    groups = [r.get("group") or r.get("source") or "" for r in rows]
    ss = np.array([float(r["scores"][strong]) for r in rows])
    sw = np.array([float(r["scores"][weak]) for r in rows])
    return texts, groups, ss, sw


def r8(x):
    return float("%.8g" % x)


def write_weights(path, ws, wd, b, thresholds, strong, weak, held_out, metrics_, trained_on):
    nz = np.flatnonzero(ws)
    doc = {
        "version": 2,
        "dense_features": DENSE_NAMES,
        "dimensions": int(len(ws)),
        "bias": r8(b),
        "sparse": {str(int(i)): r8(ws[i]) for i in nz},
        "dense": [r8(v) for v in wd],
        "thresholds": {("%.1f" % s): r8(t) for s, t in thresholds.items()},
        "trained_on": trained_on,
        "strong": strong,
        "weak": weak,
        "held_out": held_out,
        "metrics": metrics_,
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_finite(doc), fh, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        fh.write("\n")


def read_weights(path):
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    dims = int(doc["dimensions"])
    ws = np.zeros(dims)
    for k, v in doc["sparse"].items():
        ws[int(k)] = float(v)
    wd = np.array([float(v) for v in doc["dense"]])
    return doc, ws, wd, float(doc["bias"])


def score_texts(texts, ws, wd, b):
    X = Matrix(texts, len(ws))
    return sigmoid(X.logits(ws, wd, b))


# ---------------------------------------------------------------------------------------------------------
# Parity fixtures for the Swift implementation
# ---------------------------------------------------------------------------------------------------------
def find_collision(dims):
    """Two distinct tokens whose unigram keys land on the same index (checks per-index accumulation)."""
    seen = {}
    for k in range(200000):
        t = ("zq%d" % k).encode()
        i = fnv1a32(b"u:" + t) % dims
        if i in seen:
            return seen[i].decode(), t.decode()
        seen[i] = t
    return "a", "b"


def parity_texts(dims):
    c1, c2 = find_collision(dims)
    big_unit = ("Explain why the Fourier transform of a Gaussian is a Gaussian. Ünïcödé ✓ 数学 "
                "x = 42; y = x**2 -> ??\n")
    big = (big_unit * (40960 // len(big_unit.encode("utf-8")) + 1))
    big = big[:40000]  # about 40 KB of UTF-8, cut by the 32,768-byte limit inside a multi-byte character
    return [
        ("empty", ""),
        ("ascii", "What is the capital of France?"),
        ("upper_case", "WHAT IS THE CAPITAL OF FRANCE? Answer In ONE Word."),
        ("digits", "Compute 12345 * 678 + 9 = ? Then 3.14159 rounded to 2 places; 2024-01-31."),
        ("punctuation", "!!! ??? ... ,,, ;;; (a) [b] {c} <d> \"e\" 'f' `g` ~h~ ^i^ |j| \\k\\ @l# $m% &n* -o_ +p= /q:"),
        ("unicode", "Überprüfe die Aussage: «Straße» ≠ “street”. 日本語のテキスト、中文文本。 Ελληνικά! Emoji 🚀🔥 café"),
        ("code_fence", "Fix this bug:\n```python\ndef add(a, b):\n    return a - b\n```\nWhy does add(2, 2) return 0?"),
        ("mmlu_style", "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
                       "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"),
        ("repeated_tokens", "the the the the cat the the sat on the mat mat mat, THE Cat; the-cat the_cat"),
        ("newlines_questions", "\n".join("Line %d? yes?" % i for i in range(60))),
        ("whitespace_only", " \t\r\n  \n\t "),
        ("hash_collision", "%s %s %s" % (c1, c2, c1)),
        ("statements", "Statement 1 | Every group is abelian. Statement 2 | Z_4 is cyclic.\nA. True, True\n"
                       "B. False, False\nC. True, False\nD. False, True\nAnswer:"),
        ("roman_numerals", "Which are true?\nI. It can't rain.\nII. It is NOT cold, except at night.\n"
                           "(A) I only\n(B) II only"),
        ("option_indented", "Pick one, though cannot decide:\n   A) sqrt(16) = 4\n   B) 2^3 > 7 < 9"),
        ("option_mid_line", "Is A. the answer? Or A) or (A)? None of these start a line: I.x IIx XII."),
        ("numbers", "3.14.15 and 2.5, .5, 5., 1,000 and 007 then x2y3 at 12:30 on 2024-01-31"),
        ("crlf_options", "Question with CRLF lines?\r\nA. yes\r\nB. no"),
        ("long_40kb", big),
    ]


def write_parity(path, weights_path):
    doc, ws, wd, b = read_weights(weights_path)
    dims = len(ws)
    cases = []
    for name, text in parity_texts(dims):
        idx, vals, dense = features(text, dims)
        z = b + sum(ws[i] * v for i, v in zip(idx, vals)) + sum(w * d for w, d in zip(wd, dense))
        score = 1.0 / (1.0 + math.exp(-z))
        cases.append({
            "name": name,
            "text": text,
            "utf8_bytes": len(text.encode("utf-8")),
            "sparse_indices": [int(i) for i in idx],
            "sparse_values": vals,
            "dense": dense,
            "logit": z,
            "score": score,
        })
    out = {
        "about": "Expected features (FEATURES.md v2) and scores under the shipped weights; generated by "
                 "tools/router/train.py. Compare to 1e-6.",
        "weights": os.path.relpath(weights_path, REPO),
        "dimensions": dims,
        "cases": cases,
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=1)
        fh.write("\n")


# ---------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------
def group_split(groups, frac, seed):
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    perm = [uniq[i] for i in rng.permutation(len(uniq))]
    k = max(1, int(round(frac * len(uniq))))
    return sorted(perm[:k])


def group_folds(groups, k, seed):
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    perm = [uniq[i] for i in rng.permutation(len(uniq))]
    return [sorted(perm[i::k]) for i in range(k)]


def cross_validate(X, texts, groups, ss, sw, cfg, k, seed):
    """k-fold by group. Returns (mean of per-fold metrics, metrics of the pooled out-of-fold scores, the
    out-of-fold logits)."""
    garr = np.array(groups)
    y = (ss > sw).astype(np.float64)
    res = []
    oof = np.zeros(X.n)
    for fold in group_folds(groups, k, seed):
        te = np.isin(garr, fold)
        ws, wd, b = train_model(X.subset(~te), y[~te], cfg, garr[~te])
        Xt = X.subset(te)
        oof[te] = Xt.logits(ws, wd, b)
        res.append(three_way(oof[te], [t for t, m in zip(texts, te) if m], ss[te], sw[te]))
    return mean_metrics(res), three_way(oof, texts, ss, sw), oof


def half_splits(X, texts, groups, ss, sw, cfg, repeats, seed):
    """Train on a random half of the groups and evaluate on the other half, `repeats` times: the spread a
    router shows on groups it has never seen. Returns {router: [apgr per repeat]} and the same without the
    largest group in the test halves (one group must not decide the verdict)."""
    garr = np.array(groups)
    uniq = sorted(set(groups))
    largest = max(uniq, key=lambda g: int(np.sum(garr == g)))
    y = (ss > sw).astype(np.float64)
    rng = np.random.default_rng(seed)
    out, out_wo = {}, {}
    for _ in range(repeats):
        test = [uniq[i] for i in rng.permutation(len(uniq))[: len(uniq) // 2]]
        te = np.isin(garr, test)
        ws, wd, b = train_model(X.subset(~te), y[~te], cfg, garr[~te])
        logit = X.logits(ws, wd, b)
        for target, mask in ((out, te), (out_wo, te & (garr != largest))):
            t = [x for x, m in zip(texts, mask) if m]
            for name, m in three_way(logit[mask], t, ss[mask], sw[mask]).items():
                target.setdefault(name, []).append(m["apgr"])
    return out, out_wo, largest


def fmt_metrics(m):
    return {k: (r8(v) if isinstance(v, float) else v) for k, v in m.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--strong", default=DEFAULT_STRONG)
    ap.add_argument("--weak", default=DEFAULT_WEAK)
    ap.add_argument("--eval-only", action="store_true", help="evaluate --weights on --data, no training")
    ap.add_argument("--weights", default=DEFAULT_OUT, help="weights file to evaluate (--eval-only)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="where the trained weights go")
    ap.add_argument("--parity", default=DEFAULT_PARITY, help="parity fixtures to write (empty: none)")
    ap.add_argument("--lam-sparse", type=float, default=0.01)
    ap.add_argument("--lam-dense", type=float, default=0.01)
    ap.add_argument("--no-balance", action="store_true", help="do not give every subject the same weight")
    ap.add_argument("--exclude-groups", default="high_school_mathematics",
                    help="comma-separated groups left out of training and CV (reported separately); default: "
                         "high_school_mathematics, where GPT-4 scores 0.03 against Mixtral's 0.32 (a scoring "
                         "artefact of the source data that inverts the label)")
    ap.add_argument("--max-sparse", type=int, default=0,
                    help="hashed-word weights kept (0: prompt statistics only, the shipped default)")
    ap.add_argument("--holdout-frac", type=float, default=0.0,
                    help="share of the groups held out of training for a fixed held-out evaluation (default 0: "
                         "the shipped router is trained on every subject; unseen subjects are judged by --repeats)")
    ap.add_argument("--holdout-groups", default="", help="comma-separated groups held out (overrides --holdout-frac)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=30, help="random half-splits of the groups to evaluate on")
    ap.add_argument("--json", action="store_true", help="--eval-only: print JSON")
    args = ap.parse_args()
    t0 = time.time()

    if args.eval_only:
        doc, ws, wd, b = read_weights(args.weights)
        texts, groups, ss, sw = load_rows(args.data, args.strong, args.weak)
        score = score_texts(texts, ws, wd, b)
        res = three_way(score, texts, ss, sw)
        realised = {k: float(np.mean(score >= float(t))) for k, t in doc.get("thresholds", {}).items()}
        if args.json:
            print(json.dumps({"data": args.data, "weights": args.weights, "metrics": res,
                              "realised_strong_share": realised}, indent=1))
        else:
            print_table("%s  (%s vs %s, weights %s)" % (os.path.basename(args.data), args.strong, args.weak,
                                                       os.path.relpath(args.weights)), res)
            print("  realised strong share per stored threshold: " +
                  ", ".join("%s→%.2f" % (k, v) for k, v in realised.items()))
        return

    texts, groups, ss, sw = load_rows(args.data, args.strong, args.weak)
    excluded = sorted(g for g in args.exclude_groups.split(",") if g)
    ex = np.isin(np.array(groups), excluded)
    ex_texts, ex_ss, ex_sw = [t for t, m in zip(texts, ex) if m], ss[ex], sw[ex]
    texts = [t for t, m in zip(texts, ex) if not m]
    groups = [g for g, m in zip(groups, ex) if not m]
    ss, sw = ss[~ex], sw[~ex]
    y = (ss > sw).astype(np.float64)
    X = Matrix(texts)
    print("data %s: %d rows, %d groups (excluded: %s), label=1 (strong better) %.3f; features in %.1fs" % (
        os.path.basename(args.data), len(texts), len(set(groups)), ", ".join(excluded) or "none", y.mean(),
        time.time() - t0))

    if args.holdout_groups:
        held_out = sorted(g for g in args.holdout_groups.split(",") if g)
    elif args.holdout_frac > 0:
        held_out = group_split(groups, args.holdout_frac, args.seed)
    else:
        held_out = []
    garr = np.array(groups)
    te = np.isin(garr, held_out)
    tr_texts = [t for t, m in zip(texts, te) if not m]
    tr_groups = [g for g, m in zip(groups, te) if not m]
    Xtr = X.subset(~te)
    cfg = {"lam_sparse": args.lam_sparse, "lam_dense": args.lam_dense, "max_sparse": args.max_sparse,
           "balance": not args.no_balance}
    metrics_ = {"config": cfg, "excluded_from_training": excluded}

    halves = None
    if args.repeats > 0:
        # the verdict on unseen subjects: train on a random half of the subjects, evaluate on the other half
        halves, halves_wo, largest = half_splits(Xtr, tr_texts, tr_groups, ss[~te], sw[~te], cfg, args.repeats,
                                                 args.seed)
        print("%d random half-splits of the %d training subjects (train on one half, evaluate on the other), "
              "APGR:" % (args.repeats, len(set(tr_groups))))
        for title, h in (("all test subjects", halves), ("without %s" % largest, halves_wo)):
            print("  %-28s " % title + "   ".join("%s %.4f (min %.4f, > random in %d/%d)" % (
                name, np.mean(v), np.min(v), int(np.sum(np.array(v) > 0.5 + 1e-9)), len(v))
                for name, v in h.items() if name != "random"))
        metrics_["half_splits"] = {
            "repeats": args.repeats,
            "apgr_mean": r8(np.mean(halves["learned"])), "apgr_min": r8(np.min(halves["learned"])),
            "apgr_length_only_mean": r8(np.mean(halves["length"])),
            "without": largest,
            "apgr_mean_without": r8(np.mean(halves_wo["learned"])),
            "apgr_length_only_mean_without": r8(np.mean(halves_wo["length"]))}

    cvm, cv, oof = cross_validate(Xtr, tr_texts, tr_groups, ss[~te], sw[~te], cfg, args.folds, args.seed)
    print_table("%d-fold cross-validation by subject on the %d training subjects, pooled out-of-fold scores:" % (
        args.folds, len(set(tr_groups))), cv)
    print_table("  the same, mean of per-fold metrics (APGR std over folds %.4f):" % cvm["learned"]["apgr_std"],
                cvm)
    metrics_["cv_by_subject"] = {"folds": args.folds, "apgr_pooled": r8(cv["learned"]["apgr"]),
                                 "apgr_length_only_pooled": r8(cv["length"]["apgr"]),
                                 "apgr_fold_mean": r8(cvm["learned"]["apgr"])}

    ws, wd, b = train_model(Xtr, y[~te], cfg, np.array(tr_groups))
    # thresholds from validation scores: the out-of-fold scores of the cross-validation, never the final
    # model's scores on its own training prompts
    thresholds = {s: float(np.quantile(sigmoid(oof), 1.0 - s)) for s in SHARES}
    # every evaluation below uses the weights exactly as written (rounded to 8 significant digits)
    write_weights(args.out, ws, wd, b, thresholds, args.strong, args.weak, held_out, {}, "")
    doc, ws8, wd8, b8 = read_weights(args.out)
    thresholds = {s: doc["thresholds"]["%.1f" % s] for s in SHARES}
    if held_out:
        te_texts = [t for t, m in zip(texts, te) if m]
        te_score = sigmoid(X.subset(te).logits(ws8, wd8, b8))
        res = three_way(te_score, te_texts, ss[te], sw[te])
        print_table("held-out subjects %s:" % ", ".join(held_out), res)
        realised = {("%.1f" % s): float(np.mean(te_score >= thresholds[s])) for s in SHARES}
        print("  realised strong share on held-out per threshold: " +
              ", ".join("%s→%.2f" % (k, v) for k, v in realised.items()))
        m = res["learned"]
        metrics_["held_out"] = {
            "rows": m["n"], "apgr": r8(m["apgr"]), "cpt50": r8(m["cpt50"]), "cpt80": r8(m["cpt80"]),
            "random_apgr": r8(res["random"]["apgr"]), "length_only_apgr": r8(res["length"]["apgr"]),
            "realised_share": {k: r8(v) for k, v in realised.items()}}
    if ex_texts:
        ex_res = three_way(score_texts(ex_texts, ws8, wd8, b8), ex_texts, ex_ss, ex_sw)
        print_table("excluded groups %s (not trained on; PGR is inverted when strong < weak):" %
                    ", ".join(excluded), ex_res)

    write_weights(args.out, ws8, wd8, b8, thresholds, args.strong, args.weak, held_out, metrics_,
                  "%s (RouteLLM, Apache-2.0), %d subjects, %d rows" % (
                      os.path.basename(args.data), len(set(tr_groups)), len(tr_texts)))
    if args.parity:
        write_parity(args.parity, args.out)
    print("wrote %s (%d bytes, %d sparse weights)%s in %.1fs" % (
        os.path.relpath(args.out), os.path.getsize(args.out), int(np.count_nonzero(ws8)),
        (" and " + os.path.relpath(args.parity)) if args.parity else "", time.time() - t0))


if __name__ == "__main__":
    main()
