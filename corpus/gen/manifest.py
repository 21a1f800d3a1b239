"""The manifest every generator writes beside its fixtures: `{"generator": <script>, "files":
[{"path", "container", "verdict", "rules", "note"}, ...]}`, sorted by path, read by the Rust tests
(tests/it/formats.rs)."""

import json
import os


def write(folder, name, generator, files):
    """Write `folder/name` for the fixtures `files` made by the script at path `generator`."""
    rel = os.path.relpath(os.path.abspath(generator),
                          os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    with open(os.path.join(folder, name), "w") as f:
        json.dump({"generator": rel, "files": sorted(files, key=lambda e: e["path"])}, f, indent=1)
        f.write("\n")
    print(len(files), "fixtures in", name)
