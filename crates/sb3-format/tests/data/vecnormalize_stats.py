"""Writes vecnormalize_stats.json: what Python reads from every vecnormalize.pkl the corpus
manifests reference, for tests/corpus.rs to compare with.

Run from anywhere with the project's venv (numpy, stable-baselines3 installed):

    .venv/bin/python crates/sb3-format/tests/data/vecnormalize_stats.py [CORPUS_DIR]

CORPUS_DIR defaults to $PTH_CORPUS, else ../shared/corpus beside the project root. The old
files name `gym.spaces` classes; gym is not installed, so those classes load as a stub (the
spaces are not compared here: only the statistics and settings VecNormalize needs).

Per file: clip_obs, epsilon, norm_obs, the observation keys (norm_obs_keys, else obs_keys,
sorted when they were a set), and per RunningMeanStd its shape, count, the sha256 of mean and
var as contiguous little-endian float64 (C order), and the values themselves when there are at
most 16.
"""
import hashlib
import json
import os
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]  # crates/sb3-format/tests/data -> project root


class Stub:
    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "gym" or module.startswith("gym."):
            return Stub
        return super().find_class(module, name)


def rms_entry(rms):
    out = {}
    for key in ("mean", "var"):
        a = np.ascontiguousarray(np.asarray(getattr(rms, key), dtype="<f8"))
        out[key + "_sha256"] = hashlib.sha256(a.tobytes()).hexdigest()
        if a.size <= 16:
            out[key] = a.reshape(-1).tolist()
        out["shape"] = list(a.shape)
    out["count"] = float(rms.count)
    return out


def keys_of(d):
    keys = d.get("norm_obs_keys")
    if keys is None:
        keys = d.get("obs_keys")
    if keys is None:
        return None
    return sorted(keys) if isinstance(keys, (set, frozenset)) else list(keys)


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PTH_CORPUS", ROOT / "../shared/corpus"))
    files = []
    for manifest in ("rl-trained-agents", "sb3-generated"):
        for model in json.load(open(corpus / manifest / "expected.json"))["models"]:
            if model["vecnormalize"]:
                files.append(model["vecnormalize"])
    out = {}
    warnings.filterwarnings("ignore")
    for rel in sorted(set(files)):
        with open(corpus / rel, "rb") as f:
            d = Unpickler(f).load().__dict__
        obs_rms = d["obs_rms"]
        out[rel] = {
            "clip_obs": float(d["clip_obs"]),
            "epsilon": float(d["epsilon"]),
            "norm_obs": bool(d["norm_obs"]),
            "obs_keys": keys_of(d),
            "obs_rms": {k: rms_entry(v) for k, v in obs_rms.items()} if isinstance(obs_rms, dict)
            else rms_entry(obs_rms),
        }
    with open(HERE / "vecnormalize_stats.json", "w") as f:
        json.dump({"files": out}, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"{len(out)} files")


if __name__ == "__main__":
    main()
