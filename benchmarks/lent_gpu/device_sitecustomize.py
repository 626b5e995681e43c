# Copied into the device run's site dir as sitecustomize.py by run.sh. The image's pandas 3.0.6 (adaptflow needs
# >= 3.1) hands str.contains(regex) to pyarrow, which rejects the validation's mojibake pattern; with object strings
# pandas uses Python's re, as pandas 3.1 does.
import contextlib
import warnings

with contextlib.suppress(ImportError), warnings.catch_warnings():
    import pandas as pd

    warnings.simplefilter("ignore")
    pd.options.future.infer_string = False
