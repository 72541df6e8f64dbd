#!/usr/bin/env python3
"""Opens the files this library writes with h5py and Keras 3 (manual check, not CI).

    KERAS_EXPORT_DIR=/tmp/kexport swift test --filter KerasFileTests
    KERAS_BACKEND=jax python3 docs/check_keras_files.py /tmp/kexport Tests/Fixtures/conformance/models

For every model fixture it rebuilds the model from model.json with Keras,
loads <model>.weights.h5 (Keras 3 layout) and <model>.h5 (Keras 2 layout)
written by the Swift tests, and compares predictions with the fixture's
predict_output_0; <model>.keras and <model>.model.h5 (whole models, saved
after one training step) it opens with keras.models.load_model and compares
with the predictions the Swift test wrote beside them. It also walks every
HDF5 file with h5py. Prints one line per file.
"""
import json
import os
import sys

import h5py
import keras
import numpy as np


def load_array(directory, spec):
    dtype = np.int32 if spec["file"].endswith(".i32") else np.float32
    return np.fromfile(os.path.join(directory, spec["file"]), dtype=dtype).reshape(spec["shape"])


def walk(path):
    n = 0
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            nonlocal n
            dict(obj.attrs)
            if isinstance(obj, h5py.Dataset):
                obj[()]
                n += 1
        f.visititems(visit)
        dict(f.attrs)
    return n


def main(export, fixtures):
    failures = 0
    for case in sorted(os.listdir(fixtures)):
        d = os.path.join(fixtures, case)
        meta = json.load(open(os.path.join(d, "case.json")))
        x = [load_array(d, s) for s in meta["predict"]["inputs"]]
        want = load_array(d, meta["predict"]["outputs"][0])
        for suffix in [".weights.h5", ".h5", ".keras", ".model.h5"]:
            path = os.path.join(export, case + suffix)
            if not os.path.exists(path):
                continue
            expected = want
            try:
                if suffix in (".keras", ".model.h5"):
                    if suffix == ".model.h5":
                        print(f"  h5py: {walk(path)} datasets in {path}")
                    model = keras.models.load_model(path)
                    expected = np.fromfile(path + ".predict.f32", dtype=np.float32).reshape(want.shape)
                    if model.optimizer is not None:
                        print(f"  {case}{suffix}: compiled, optimizer {type(model.optimizer).__name__}, iterations {int(model.optimizer.iterations)}")
                else:
                    print(f"  h5py: {walk(path)} datasets in {path}")
                    model = keras.models.model_from_json(open(os.path.join(d, "model.json")).read())
                    if suffix == ".h5":
                        from keras.src.legacy.saving import legacy_h5_format
                        with h5py.File(path, "r") as f:
                            legacy_h5_format.load_weights_from_hdf5_group(f, model)
                    else:
                        model.load_weights(path)
                got = model.predict(x if len(x) > 1 else x[0], verbose=0)
                err = float(np.max(np.abs(got - expected)))
                ok = err <= 1e-4 * (1 + float(np.max(np.abs(expected))))
                failures += not ok
                print(f"{'ok' if ok else 'FAIL'} {case}{suffix}: max abs error {err:.3g}")
            except Exception as e:  # report and go on
                failures += 1
                print(f"FAIL {case}{suffix}: {type(e).__name__}: {e}")
    failures += check_zoo(export)
    return failures


def check_zoo(export):
    """The nested model (NestedModelFileTests): two inputs and outputs, a shared
    layer, a nested Sequential, Bidirectional(LSTM), TimeDistributed, GRU,
    BatchNormalization; every file, against the predictions written beside it."""
    json_path = os.path.join(export, "zoo.json")
    if not os.path.exists(json_path):
        return 0
    x = [np.fromfile(os.path.join(export, "zoo.input0.f32"), dtype=np.float32).reshape(6, 5, 3),
         np.fromfile(os.path.join(export, "zoo.input1.f32"), dtype=np.float32).reshape(6, 4)]
    want = [np.fromfile(os.path.join(export, "zoo.output0.f32"), dtype=np.float32).reshape(6, 1),
            np.fromfile(os.path.join(export, "zoo.output1.f32"), dtype=np.float32).reshape(6, 3)]
    failures = 0
    for suffix in [".keras", ".model.h5", ".weights.h5", ".h5"]:
        path = os.path.join(export, "zoo" + suffix)
        try:
            if suffix in (".keras", ".model.h5"):
                model = keras.models.load_model(path)
            else:
                model = keras.models.model_from_json(open(json_path).read())
                if suffix == ".h5":
                    from keras.src.legacy.saving import legacy_h5_format
                    with h5py.File(path, "r") as f:
                        legacy_h5_format.load_weights_from_hdf5_group(f, model)
                else:
                    model.load_weights(path)
            got = model.predict(x, verbose=0)
            err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
            ok = err <= 1e-4
            failures += not ok
            print(f"{'ok' if ok else 'FAIL'} zoo{suffix}: max abs error {err:.3g}")
        except Exception as e:
            failures += 1
            print(f"FAIL zoo{suffix}: {type(e).__name__}: {e}")
    return failures


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1], sys.argv[2]) else 0)
