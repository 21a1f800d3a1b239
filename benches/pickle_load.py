"""Time CPython's pickle.load of a (benign) file, the reference the scanner is compared with."""
import pickle
import sys

with open(sys.argv[1], "rb") as f:
    pickle.load(f)
