"""Fails (exit 1) when an executed notebook shows a cell error.

`jupyter nbconvert --execute` exits 0 when an evcxr cell panics or returns an `Err` through `?`
(only compile errors stop it): evcxr reports those on the cell's stderr stream, or as a line
`Error: …` on stdout. So every executed notebook is checked here: each code cell ran, no output
is an error, nothing was written to stderr (the library prints nothing there in a notebook:
progress bars are hidden when stderr is not a terminal), no output (stdout, or a displayed
text or HTML) has a line that starts with `Error:`, and no figure failed to draw ("could not
draw …"). Its own tests: notebooks/test_check_outputs.py.
    python3 notebooks/check_outputs.py runs/notebooks/executed/*.ipynb
"""
import json
import re
import sys

# a line that reports an error, as evcxr and `anyhow` print one
ERROR_LINE = re.compile(r"^\s*Error:", re.MULTILINE)
# what the library's displays print when a figure cannot be drawn
NOT_DRAWN = "could not draw"


def _text(value):
    return "".join(value) if isinstance(value, list) else str(value)


def _shown(out):
    """The texts an output shows: a stream's text, or each of a display's text forms."""
    if out["output_type"] == "stream":
        return [_text(out.get("text", ""))]
    data = out.get("data", {})
    return [_text(data[kind]) for kind in ("text/plain", "text/html", "text/markdown") if kind in data]


def problems_in(nb):
    """Every problem of the executed notebook `nb` (a parsed .ipynb), as a line each."""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = _text(cell["source"]).strip()
        head = source.splitlines()[0] if source else ""
        if source and cell.get("execution_count") is None:
            yield f"cell {i} did not run: {head}"
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                yield f"cell {i} ({head}): {out.get('ename')}: {out.get('evalue')}"
                continue
            if out["output_type"] == "stream" and out.get("name") == "stderr":
                text = _text(out.get("text", "")).strip()
                if text:
                    yield f"cell {i} ({head}) wrote to stderr: {text[:500]}"
                continue
            for text in _shown(out):
                found = ERROR_LINE.search(text)
                if found:
                    line = text[found.start():].strip().splitlines()[0]
                    yield f"cell {i} ({head}) shows an error: {line[:500]}"
                if NOT_DRAWN in text:
                    at = text.index(NOT_DRAWN)
                    yield f"cell {i} ({head}) shows a figure not drawn: {text[at:at + 300]}"


def problems(path):
    with open(path) as f:
        return list(problems_in(json.load(f)))


def main(paths):
    failed = False
    for path in paths:
        found = problems(path)
        for p in found:
            print(f"{path}: {p}", file=sys.stderr)
        failed |= bool(found)
        if not found:
            print(f"{path}: every cell ran without error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
