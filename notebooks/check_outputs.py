"""Fails (exit 1) when an executed notebook shows a cell error.

`jupyter nbconvert --execute` exits 0 when an evcxr cell panics or returns an `Err` through `?`
(only compile errors stop it): evcxr reports those on the cell's stderr stream. So every
executed notebook is checked here: each code cell ran, no output is an error, and nothing was
written to stderr (the library prints nothing there in a notebook: progress bars are hidden when
stderr is not a terminal).
    python3 notebooks/check_outputs.py runs/notebooks/executed/*.ipynb
"""
import json
import sys


def problems(path):
    nb = json.load(open(path))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]).strip()
        head = source.splitlines()[0] if source else ""
        if source and cell.get("execution_count") is None:
            yield f"cell {i} did not run: {head}"
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                yield f"cell {i} ({head}): {out.get('ename')}: {out.get('evalue')}"
            elif out["output_type"] == "stream" and out.get("name") == "stderr":
                text = "".join(out["text"]).strip()
                if text:
                    yield f"cell {i} ({head}) wrote to stderr: {text[:500]}"


failed = False
for path in sys.argv[1:]:
    found = list(problems(path))
    for p in found:
        print(f"{path}: {p}", file=sys.stderr)
    failed |= bool(found)
    if not found:
        print(f"{path}: every cell ran without error")
sys.exit(1 if failed else 0)
