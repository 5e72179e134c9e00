"""Where a compatibility program puts what it observed: JSON with sorted keys, into the file
COMPAT_OUT names, else stdout."""

import json
import os


def report(observed: dict) -> None:
    text = json.dumps(observed, sort_keys=True, indent=1) + "\n"
    target = os.environ.get("COMPAT_OUT")
    if target:
        with open(target, "w") as file:
            file.write(text)
    else:
        print(text, end="")
